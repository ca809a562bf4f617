"""The REST API of atnas (FastAPI): ``create_app`` builds it; ``AtnasClient`` talks to it."""
