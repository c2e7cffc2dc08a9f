# The two commands of the README: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SESSIONS ?= 20000
SEED ?= 42
BENCH_SESSIONS ?= 1000000
# pytest-xdist workers: each test module (or group sharing a database) runs whole on one.
PYTEST_WORKERS ?= 3
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test lint pytest bench report spark-setup spark-build up down status clean

setup: $(VENV)/.installed $(VENV)/.hooks

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev,spark]'
	touch $@

# psql, and the embedded server's password file (PGPASSFILE) for every Python in .venv (dbt
# included, through a .pth file) and for shells that source .venv/bin/activate.
$(VENV)/.hooks: $(VENV)/.installed scripts/psql scripts/activate-passfile.sh
	sed -e "s|@PSQL@|$$($(BIN)/python -c 'from python_jobs.server import _wheel_bin; print(_wheel_bin() / "psql")')|" \
		-e "s|@ROOT@|$(CURDIR)|" scripts/psql > $(BIN)/psql && chmod +x $(BIN)/psql
	echo 'import python_jobs.config as c; c.export_passfile_if_embedded()' > \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/streaming_warehouse_passfile.pth"
	grep -q '^# streaming-warehouse:' $(BIN)/activate || \
		sed "s|@ROOT@|$(CURDIR)|" scripts/activate-passfile.sh >> $(BIN)/activate
	touch $@

demo: setup
	$(BIN)/python -m python_jobs.warehouse up
	$(BIN)/python -m python_jobs.generate --sessions $(SESSIONS) --seed $(SEED)
	# a new data set replaces raw wholesale, so incremental models are rebuilt, not extended
	$(BIN)/dbt build --selector daily --full-refresh --exclude-resource-type unit_test
	$(BIN)/python -m python_jobs.ab analyze --all
	$(BIN)/python -m python_jobs.train
	$(BIN)/dbt build --selector ml_scoring
	$(BIN)/python -m python_jobs.report
	$(BIN)/python -m python_jobs.warehouse summary

test: setup lint pytest

lint: setup
	$(BIN)/ruff check python_jobs tests dashboards dbt_score_rules
	$(BIN)/sqlfluff lint models macros tests analyses --disable-progress-bar
	$(BIN)/python dashboards/build_workbook.py --check

pytest: setup
	$(BIN)/python -m python_jobs.warehouse up
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --no-loadscope-reorder

bench: setup
	$(BIN)/python -m python_jobs.bench --sessions $(BENCH_SESSIONS)

# The same project on Apache Spark (local, in-process): Java + pyspark, then build and compare
# every mart with the PostgreSQL build of the same database.
spark-setup: setup
	bash scripts/spark-setup.sh

spark-build: spark-setup
	$(BIN)/python -m python_jobs.spark build
	$(BIN)/python -m python_jobs.spark compare

report: setup
	$(BIN)/python -m python_jobs.report

up down status: setup
	$(BIN)/python -m python_jobs.warehouse $@

clean:
	-$(BIN)/python -m python_jobs.warehouse down
	rm -rf $(VENV) .warehouse target logs
