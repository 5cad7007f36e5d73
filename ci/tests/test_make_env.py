import stat
from itertools import count

import make_env
import pytest

EXAMPLE = """# header
DAGSTER_POSTGRES_PASSWORD=
DAGSTER_POSTGRES_USER=dagster

# section
TAXI_DATA_SOURCE=nyc-tlc
SUPERSET_SECRET_KEY=
"""


def fake_secrets():
    numbers = count(1)
    return lambda: f"secret{next(numbers)}"


def test_empty_values_are_generated_and_the_rest_kept():
    text, generated = make_env.render_env(EXAMPLE, make_secret=fake_secrets())
    assert generated == ["DAGSTER_POSTGRES_PASSWORD", "SUPERSET_SECRET_KEY"]
    assert text.splitlines() == [
        "# header",
        "DAGSTER_POSTGRES_PASSWORD=secret1",
        "DAGSTER_POSTGRES_USER=dagster",
        "",
        "# section",
        "TAXI_DATA_SOURCE=nyc-tlc",
        "SUPERSET_SECRET_KEY=secret2",
    ]


def test_overrides_replace_in_place_and_new_ones_are_appended():
    text, generated = make_env.render_env(
        EXAMPLE,
        {"TAXI_DATA_SOURCE": "sample", "DAGSTER_POSTGRES_PASSWORD": "given", "EXTRA": "1"},
        make_secret=fake_secrets(),
    )
    lines = text.splitlines()
    assert "TAXI_DATA_SOURCE=sample" in lines and "TAXI_DATA_SOURCE=nyc-tlc" not in lines
    assert "DAGSTER_POSTGRES_PASSWORD=given" in lines
    assert generated == ["SUPERSET_SECRET_KEY"]
    assert lines[-1] == "EXTRA=1"


def test_real_secrets_are_long_random_and_need_no_quoting():
    first, second = make_env.new_secret(), make_env.new_secret()
    assert first != second and len(first) >= 32
    assert all(c.isalnum() or c in "-_" for c in first)


def test_the_repository_example_leaves_only_credentials_empty():
    text = (make_env.REPO_ROOT / ".env.example").read_text()
    _, generated = make_env.render_env(text, make_secret=fake_secrets())
    assert "DAGSTER_POSTGRES_PASSWORD" in generated
    assert all(any(word in name for word in ("PASSWORD", "SECRET", "KEY")) for name in generated)


@pytest.mark.parametrize("bad", ["NOEQUALS", "1BAD=x", "=x"])
def test_malformed_assignments_are_rejected(bad):
    with pytest.raises(ValueError):
        make_env.parse_assignments([bad])


def test_main_writes_a_private_file_and_keeps_an_existing_one(tmp_path, capsys):
    example = tmp_path / "example"
    example.write_text(EXAMPLE)
    out = tmp_path / ".env"
    assert make_env.main(["--example", str(example), "--out", str(out), "--set", "A=b"]) == 0
    first = out.read_text()
    assert "A=b" in first
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "secret" not in capsys.readouterr().out.lower().replace("secret_key", "")
    assert make_env.main(["--example", str(example), "--out", str(out)]) == 0
    assert out.read_text() == first  # credentials of an existing stack are never replaced
    assert make_env.main(["--example", str(example), "--out", str(out), "--force"]) == 0
    assert out.read_text() != first
