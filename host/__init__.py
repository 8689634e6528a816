"""bioloop.host: block models, bioware pipeline, observation, codec, culture, driver, CLI."""
