import pytest

from market import config
from market.app import create_app


def test_refuses_to_start_in_production_with_the_development_secret(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6399/3")
    monkeypatch.setenv("YUENONG_LOGIN_RATE_LIMIT", "3 per minute")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("x.db")
    assert app.config["CELERY"]["broker_url"] == "redis://127.0.0.1:6399/3"
    assert app.config["CELERY"]["task_always_eager"] is False
    assert app.config["LOGIN_RATE_LIMIT"] == "3 per minute"
    # The defaults were copied, not edited in place.
    assert config.DEFAULTS["CELERY"]["task_always_eager"] is True


def test_defaults_are_the_embedded_setup(monkeypatch):
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"TESTING": True})
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert app.config["CELERY"]["task_always_eager"] is True


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x", "sqlite:///x"),
    ],
)
def test_database_urls_use_psycopg3(given, expected):
    assert config.normalize_database_url(given) == expected
