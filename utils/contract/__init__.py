"""The job input contract: its declaration and the rules no type can say."""
