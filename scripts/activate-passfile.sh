# streaming-warehouse: appended to .venv/bin/activate by `make setup`. Shells that source it
# find the embedded server's passwords (a libpq password file) unless PGPASSWORD or PGPASSFILE
# is already set; `python -m python_jobs.warehouse env` says more.
if [ -z "${PGPASSWORD:-}" ] && [ -z "${PGPASSFILE:-}" ]; then
    PGPASSFILE="${WAREHOUSE_DIR:-@ROOT@/.warehouse}/credentials"
    export PGPASSFILE
fi
