"""The domain layer: callable from routes, socket handlers, tasks and tests alike."""
