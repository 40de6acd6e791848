# Two commands matter: `make run` (the whole hub on SQLite with demo data)
# and `make test` (the whole suite, on SQLite and PostgreSQL).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test coverage lint schema bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mss serve --first-run-demo

# The whole suite, with branch coverage of mss, portal and dmp_bridge and its floor
# ([tool.coverage] in pyproject.toml: fail_under).
test: $(STAMP)
	$(PY) -m pytest --durations=25 --cov --cov-report=term

# The same (kept for habit's sake: the suite always measures coverage).
coverage: test

# The long fuzz run (bench/fuzz.py): every parser target, FUZZ_SECONDS split between them.
FUZZ_SECONDS ?= 3600
fuzz: $(STAMP)
	$(PY) bench/fuzz.py --all --seconds $(FUZZ_SECONDS)

# The style checks CI runs before the tests (.ci/run): ruff's rules (pyproject.toml) and its format,
# and mypy with 0 errors (strict on mss/policy: [tool.mypy] in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check mss portal dmp_bridge tests bench
	$(VENV)/bin/ruff format --check mss portal dmp_bridge tests bench
	$(VENV)/bin/mypy mss portal dmp_bridge

# Regenerate the initial migration from the models (only until the first release).
schema: $(STAMP)
	rm -f mss/migrations/versions/0001_initial_schema.py /tmp/mss-schema-gen.sqlite3
	$(PY) -c "from alembic import command; from mss.migrate import alembic_config; \
command.revision(alembic_config('sqlite+aiosqlite:////tmp/mss-schema-gen.sqlite3'), \
message='initial schema', autogenerate=True, rev_id='0001')"
	rm -f /tmp/mss-schema-gen.sqlite3

clean:
	rm -rf $(VENV) var build *.egg-info
