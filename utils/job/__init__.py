"""A job's life: the pipeline, preparation, the in-flight audio budget, the deadline, job directories."""
