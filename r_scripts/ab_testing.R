# A/B tests re-derived in R, independently of python_jobs.ab, from the same mart.
#
#   Rscript r_scripts/ab_testing.R [OUTPUT_DIR]
#
# Reads marts.fct_experiment_user_metrics (one row per experiment and enrolled user) and
# recomputes the primary statistics of `python -m python_jobs.ab analyze` with R's own tests:
#   play_count, listening_minutes, session_count  t.test(treatment, control), Welch
#   retention_d<N> (is_retained, users where defined)  prop.test(correct = FALSE) per variant,
#                                                  chisq.test(correct = FALSE) over all variants
#   skip_rate  sum(skips) / sum(plays) per arm, delta method written out here (R has no test
#              for ratio metrics)
#   SRM        chisq.test(users per variant, p = planned weights from ab.latest_srm_checks)
# Writes ab_results_r.csv and ab_srm_r.csv (compared with schema ab by
# tests/python/test_r_scripts.py) and ab_forest_r.png. Every effect is treatment minus control.

script_dir <- function() {
    file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
    if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[[1]]))) else "r_scripts"
}
source(file.path(script_dir(), "common.R"))

CONTROL <- "control"
CONF_LEVEL <- 0.95  # python_jobs.ab's default alpha = 0.05
MEAN_METRICS <- c("play_count", "listening_minutes", "session_count")

result_row <- function(experiment, metric, method, variant, n, n_control, value, value_control,
                       effect, ci_low, ci_high, statistic, df, p_value, r_function) {
    data.frame(
        experiment_id = experiment, metric = metric, method = method, variant = variant,
        control_variant = CONTROL, n = n, n_control = n_control, value = value,
        value_control = value_control, effect = effect, ci_low = ci_low, ci_high = ci_high,
        statistic = statistic, df = df, p_value = p_value, r_function = r_function,
        stringsAsFactors = FALSE
    )
}

welch_rows <- function(users, experiment, variants) {
    rows <- list()
    for (metric in MEAN_METRICS) {
        control <- users[[metric]][users$variant == CONTROL]
        for (v in setdiff(variants, CONTROL)) {
            treated <- users[[metric]][users$variant == v]
            # t.test(x, y) estimates mean(x) - mean(y): treatment first.
            test <- t.test(treated, control, var.equal = FALSE, conf.level = CONF_LEVEL)
            rows[[length(rows) + 1]] <- result_row(
                experiment, metric, "welch_t", v, length(treated), length(control),
                mean(treated), mean(control), mean(treated) - mean(control),
                test$conf.int[[1]], test$conf.int[[2]], unname(test$statistic),
                unname(test$parameter), test$p.value, "t.test(var.equal = FALSE)"
            )
        }
    }
    rows
}

retention_rows <- function(users, experiment, variants) {
    defined <- users[!is.na(users$is_retained), ]
    metric <- sprintf("retention_d%d", as.integer(defined$retention_days[[1]]))
    present <- variants[sapply(variants, function(v) sum(defined$variant == v) >= 2)]
    if (!(CONTROL %in% present) || length(present) < 2) return(list())
    successes <- sapply(present, function(v) sum(defined$is_retained[defined$variant == v]))
    totals <- sapply(present, function(v) sum(defined$variant == v))
    rows <- list()
    for (v in setdiff(present, CONTROL)) {
        x <- c(successes[[v]], successes[[CONTROL]])
        n <- c(totals[[v]], totals[[CONTROL]])
        # Without continuity correction prop.test's X-squared is the pooled z squared and its
        # interval the unpooled Wald interval, the same as python_jobs.ab.stats.
        test <- prop.test(x, n, correct = FALSE, conf.level = CONF_LEVEL)
        effect <- x[[1]] / n[[1]] - x[[2]] / n[[2]]
        rows[[length(rows) + 1]] <- result_row(
            experiment, metric, "two_proportion_z", v, n[[1]], n[[2]], x[[1]] / n[[1]],
            x[[2]] / n[[2]], effect, test$conf.int[[1]], test$conf.int[[2]],
            sign(effect) * sqrt(unname(test$statistic)), NA, test$p.value,
            "prop.test(correct = FALSE); statistic = signed sqrt(X-squared)"
        )
    }
    table <- rbind(successes, totals - successes)
    omnibus <- chisq.test(table, correct = FALSE)
    rows[[length(rows) + 1]] <- result_row(
        experiment, metric, "chi_square", "all", sum(totals), totals[[CONTROL]],
        sum(successes) / sum(totals), successes[[CONTROL]] / totals[[CONTROL]], NA, NA, NA,
        unname(omnibus$statistic), unname(omnibus$parameter), omnibus$p.value,
        "chisq.test(correct = FALSE)"
    )
    rows
}

ratio_arm <- function(x, y) {
    # Delta method for R = sum(x) / sum(y), users independent: the variance of the per-user
    # linearised value (x - R y) / mean(y), divided by n.
    n <- length(x)
    r <- sum(x) / sum(y)
    variance <- (var(x) - 2 * r * cov(x, y) + r^2 * var(y)) / (n * mean(y)^2)
    list(n = n, ratio = r, variance = variance)
}

skip_rate_rows <- function(users, experiment, variants) {
    arm <- function(v) ratio_arm(users$skip_count[users$variant == v], users$play_count[users$variant == v])
    control <- arm(CONTROL)
    z_crit <- qnorm(1 - (1 - CONF_LEVEL) / 2)
    rows <- list()
    for (v in setdiff(variants, CONTROL)) {
        treated <- arm(v)
        effect <- treated$ratio - control$ratio
        se <- sqrt(treated$variance + control$variance)
        z <- effect / se
        rows[[length(rows) + 1]] <- result_row(
            experiment, "skip_rate", "ratio_delta_z", v, treated$n, control$n, treated$ratio,
            control$ratio, effect, effect - z_crit * se, effect + z_crit * se, z, NA,
            2 * pnorm(-abs(z)), "delta method by hand, pnorm"
        )
    }
    rows
}

con <- warehouse_connect()
out <- output_dir()

metrics <- query(con, "
    select experiment_id, user_id, variant, retention_days, play_count, listening_minutes,
        session_count, skip_count, is_retained
    from marts.fct_experiment_user_metrics
    order by experiment_id, user_id")

rows <- list()
for (experiment in sort(unique(metrics$experiment_id))) {
    users <- metrics[metrics$experiment_id == experiment, ]
    # Variants with fewer than two users cannot be tested (python_jobs.ab leaves them out too).
    counts <- table(users$variant)
    variants <- sort(names(counts)[counts >= 2])
    if (!(CONTROL %in% variants) || length(variants) < 2) {
        message(experiment, ": not enough users per variant, skipped")
        next
    }
    users <- users[users$variant %in% variants, ]
    rows <- c(rows, welch_rows(users, experiment, variants),
              retention_rows(users, experiment, variants),
              skip_rate_rows(users, experiment, variants))
}
results <- do.call(rbind, rows)
save_csv(results, out, "ab_results_r.csv")

# Sample-ratio mismatch against the planned weights the Python job recorded.
srm_rows <- list()
if (table_exists(con, "ab", "latest_srm_checks")) {
    planned <- query(con, "select experiment_id, variant, allocation_weight
                           from ab.latest_srm_checks where allocation_weight is not null")
    for (experiment in sort(unique(planned$experiment_id))) {
        plan <- planned[planned$experiment_id == experiment, ]
        users <- metrics[metrics$experiment_id == experiment, ]
        observed <- sapply(plan$variant, function(v) sum(users$variant == v))
        test <- chisq.test(observed, p = plan$allocation_weight / sum(plan$allocation_weight))
        srm_rows[[length(srm_rows) + 1]] <- data.frame(
            experiment_id = experiment, variants = length(observed), users = sum(observed),
            statistic = unname(test$statistic), df = unname(test$parameter),
            p_value = test$p.value, is_mismatch = test$p.value < 0.001
        )
    }
} else {
    message("ab.latest_srm_checks missing: run python -m python_jobs.ab analyze --all first")
}
srm <- if (length(srm_rows)) do.call(rbind, srm_rows) else
    data.frame(experiment_id = character(), variants = integer(), users = integer(),
               statistic = numeric(), df = numeric(), p_value = numeric(),
               is_mismatch = logical())
save_csv(srm, out, "ab_srm_r.csv")

# Forest plot of the relative lifts is the report's; here the absolute effects per metric.
forest <- results[results$method != "chi_square", ]
forest$label <- paste(forest$experiment_id, forest$variant, sep = " / ")
plot <- ggplot(forest, aes(x = effect, y = label, colour = p_value < 0.05)) +
    geom_vline(xintercept = 0, linetype = "dashed", colour = "grey50") +
    geom_errorbarh(aes(xmin = ci_low, xmax = ci_high), height = 0.2) +
    geom_point() +
    facet_wrap(~metric, scales = "free_x") +
    scale_colour_manual(values = c(`FALSE` = "grey40", `TRUE` = "firebrick"),
                        name = "p < 0.05 (unadjusted)") +
    labs(title = "A/B effects re-derived in R (treatment - control, 95% CI)", x = "effect",
         y = NULL) +
    theme_minimal()
save_plot(plot, out, "ab_forest_r.png", width = 11, height = 6)

invisible(dbDisconnect(con))
