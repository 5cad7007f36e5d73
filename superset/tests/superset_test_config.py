"""Config for unit tests that import Superset modules (not used by the image)."""

SECRET_KEY = "unit-tests-only-not-a-secret-0123456789abcdef"
SQLALCHEMY_DATABASE_URI = "sqlite://"
