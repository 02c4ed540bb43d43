"""Entry point for `celery -A market.wsgi_celery worker|beat`."""

from market.app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
