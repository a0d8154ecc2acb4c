"""The HTTP front door (`server.py`): OpenAI's transcription API and the queue's JSON contract over HTTP.

`app` holds the routes; `form` reads uploads; `openai_params` turns OpenAI's form into the queue input;
`formats` turns the queue's result into OpenAI's responses and stream events; `errors` maps error types
to statuses; `readiness` loads the model in the background and answers /ping.
"""
