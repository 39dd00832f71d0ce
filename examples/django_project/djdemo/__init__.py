"""A minimal Django project whose sessions run on wsgisession."""
