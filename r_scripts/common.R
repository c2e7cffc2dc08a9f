# Shared by the R scripts: one connection story (the PG* variables, as for psql, dbt and the
# Python jobs) and one output folder. Sourced, not run.
#
#   PGHOST (127.0.0.1)  PGPORT (54329)  PGUSER (reporter)  PGPASSWORD  PGDATABASE (warehouse)
#   output folder: first command-line argument, else $R_OUTPUT_DIR, else output/r
#
# The default user is the read-only role `reporter`: the scripts only read marts and the
# result schemas (ab, ml), never write to the warehouse.
#
# Passwords: PGPASSWORD when set, else libpq's password file. For the project's embedded server
# that is .warehouse/credentials (written by `python -m python_jobs.warehouse up`); it is used
# automatically when neither PGPASSWORD nor PGPASSFILE is set and PGHOST is unset.

suppressPackageStartupMessages({
    library(DBI)
    library(RPostgreSQL)  # Debian ships r-cran-rpostgresql, not RPostgres
    library(ggplot2)
    library(dplyr)
})

env_or <- function(name, default) {
    value <- Sys.getenv(name, unset = "")
    if (nzchar(value)) value else default
}

# The project root: two levels above the running script (r_scripts/<name>.R), else here.
project_root <- function() {
    file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
    if (length(file_arg) == 0) return(getwd())
    dirname(dirname(normalizePath(sub("^--file=", "", file_arg[[1]]))))
}

# RPostgreSQL is libpq underneath: PGPASSFILE is where libpq looks for a password.
use_embedded_passfile <- function() {
    embedded <- !nzchar(Sys.getenv("PGHOST")) ||
        (Sys.getenv("PGHOST") %in% c("127.0.0.1", "localhost") &&
         env_or("PGPORT", "54329") == "54329")
    if (embedded && !nzchar(Sys.getenv("PGPASSWORD")) && !nzchar(Sys.getenv("PGPASSFILE"))) {
        state <- env_or("WAREHOUSE_DIR", file.path(project_root(), ".warehouse"))
        Sys.setenv(PGPASSFILE = file.path(state, "credentials"))
    }
}

warehouse_connect <- function() {
    use_embedded_passfile()
    args <- list(
        PostgreSQL(),
        host = env_or("PGHOST", "127.0.0.1"),
        port = as.integer(env_or("PGPORT", "54329")),
        user = env_or("PGUSER", "reporter"),
        dbname = env_or("PGDATABASE", "warehouse")
    )
    # Only pass a password when one is set: else libpq reads PGPASSFILE (see above).
    password <- env_or("PGPASSWORD", "")
    if (nzchar(password)) args$password <- password
    do.call(dbConnect, args)
}

output_dir <- function() {
    args <- commandArgs(trailingOnly = TRUE)
    dir <- if (length(args) >= 1) args[[1]] else env_or("R_OUTPUT_DIR", file.path("output", "r"))
    dir.create(dir, recursive = TRUE, showWarnings = FALSE)
    dir
}

query <- function(con, sql) {
    # RPostgreSQL returns bigint as numeric (double); counts stay exact below 2^53.
    dbGetQuery(con, sql)
}

table_exists <- function(con, schema, table) {
    sql <- sprintf(
        "select count(*) as n from information_schema.tables where table_schema = '%s' and table_name = '%s'",
        schema, table
    )
    query(con, sql)$n[[1]] > 0
}

save_csv <- function(frame, dir, name) {
    path <- file.path(dir, name)
    # write.csv keeps 15 significant digits: enough to compare with Python to 1e-9.
    write.csv(frame, path, row.names = FALSE, na = "")
    message("wrote ", path)
    invisible(path)
}

save_plot <- function(plot, dir, name, width = 9, height = 5) {
    path <- file.path(dir, name)
    # ggsave picks ragg or png(type = "cairo"): both work without an X server.
    ggsave(path, plot, width = width, height = height, dpi = 110)
    message("wrote ", path)
    invisible(path)
}
