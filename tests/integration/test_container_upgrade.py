"""`python -m stoloto.container upgrade`, the container's migration step: replicas starting at once take turns."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from tests.conftest import TEST_KEY_ENCRYPTION_KEY, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
PRINTED = "создан пользователь admin, пароль: "
SCHEMA = "sis_upgrade_race"
HEAD = ScriptDirectory(str(ROOT / "migrations")).get_current_head()


def start_upgrade(database_url: str, instance: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "SIS_INSTANCE_PATH": str(instance),
           "SECRET_KEY": TEST_SECRET, "SIS_KEY_ENCRYPTION_KEY": TEST_KEY_ENCRYPTION_KEY}
    env.pop("SIS_ADMIN_PASSWORD", None)
    return subprocess.Popen([sys.executable, "-m", "stoloto.container", "upgrade"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def empty_postgresql_schema(database_url):
    """An empty schema of the test database, reached through search_path: an empty database for the upgrade."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): the advisory lock is PostgreSQL's")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    yield f"{database_url}?options=-csearch_path%3D{SCHEMA}"
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    engine.dispose()


def test_two_upgrades_at_once_on_an_empty_postgresql_database_both_succeed(empty_postgresql_schema, tmp_path):
    first = start_upgrade(empty_postgresql_schema, tmp_path / "a")
    second = start_upgrade(empty_postgresql_schema, tmp_path / "b")
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    for process, (_, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, err
    # Exactly one of them created the first admin and printed its password.
    assert sum(PRINTED in err for _, err in outputs) == 1
    engine = create_engine(empty_postgresql_schema)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
        assert connection.scalar(text("SELECT count(*) FROM users")) == 1
    engine.dispose()


def test_the_upgrade_on_sqlite_migrates_the_instance_database(tmp_path):
    database = tmp_path / "sis.db"
    process = start_upgrade(f"sqlite:///{database}", tmp_path / "instance")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert PRINTED in err
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
    engine.dispose()
