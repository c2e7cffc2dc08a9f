# Signup-cohort retention and churn, from the retention marts.
#
#   Rscript r_scripts/cohort_analysis.R [OUTPUT_DIR]
#
# Reads marts.fct_retention_cohorts (long format: cohort x segment x period, only fully
# observed periods) and marts.fct_user_churn. Writes:
#   retention_matrix_weekly.csv   weekly cohorts (rows) x weeks since signup (columns), all users
#   retention_by_tier.csv         retention per week since signup and tier, cohorts pooled
#   churn_by_tier.csv             users per churn status and tier, with shares
#   retention_heatmap.png, retention_curves.png, retention_by_tier.png

script_dir <- function() {
    file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
    if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[[1]]))) else "r_scripts"
}
source(file.path(script_dir(), "common.R"))

con <- warehouse_connect()
out <- output_dir()

weekly <- query(con, "
    select cohort_start_date, segment_type, segment_value, period_number,
        cohort_user_count, active_user_count, retention_rate
    from marts.fct_retention_cohorts
    where cohort_grain = 'week' and period_unit = 'week'
    order by cohort_start_date, period_number")

# The cohort matrix as analysts read it: one row per cohort, one column per week. Periods a
# cohort has not fully lived through are absent in the mart and stay empty (censoring).
all_users <- weekly[weekly$segment_type == "all", ]
matrix <- reshape(
    all_users[, c("cohort_start_date", "cohort_user_count", "period_number", "retention_rate")],
    idvar = c("cohort_start_date", "cohort_user_count"), timevar = "period_number",
    direction = "wide"
)
weeks <- sort(unique(all_users$period_number))
matrix <- matrix[, c("cohort_start_date", "cohort_user_count", paste0("retention_rate.", weeks))]
names(matrix) <- c("cohort_start_date", "cohort_user_count", paste0("week_", weeks))
save_csv(matrix, out, "retention_matrix_weekly.csv")

heatmap <- ggplot(all_users, aes(x = factor(period_number), y = factor(cohort_start_date),
                                 fill = retention_rate)) +
    geom_tile(colour = "white") +
    geom_text(aes(label = sprintf("%.0f%%", 100 * retention_rate)), size = 2.6) +
    scale_fill_gradient(low = "#f7fbff", high = "#08519c", limits = c(0, 1),
                        labels = scales::percent) +
    scale_y_discrete(limits = rev) +
    labs(title = "Weekly signup cohorts: share of users active N weeks after signup",
         x = "weeks since signup", y = "signup week", fill = "retention") +
    theme_minimal()
save_plot(heatmap, out, "retention_heatmap.png", width = 10, height = 6)

curves <- ggplot(all_users, aes(x = period_number, y = retention_rate,
                                group = cohort_start_date, colour = cohort_start_date)) +
    geom_line(alpha = 0.7) +
    scale_y_continuous(labels = scales::percent, limits = c(0, 1)) +
    scale_colour_date(name = "signup week") +
    labs(title = "Retention curves by weekly cohort", x = "weeks since signup",
         y = "active users / cohort users") +
    theme_minimal()
save_plot(curves, out, "retention_curves.png")

# Pooled over cohorts, weighted by cohort size (a cohort of 3 users should not count as much
# as one of 300): sum(active) / sum(cohort users) per period and tier.
by_tier <- weekly %>%
    filter(segment_type == "tier") %>%
    group_by(tier = segment_value, period_number) %>%
    summarise(cohorts = n(), cohort_users = sum(cohort_user_count),
              active_users = sum(active_user_count), .groups = "drop") %>%
    mutate(retention_rate = active_users / cohort_users) %>%
    arrange(tier, period_number)
save_csv(as.data.frame(by_tier), out, "retention_by_tier.csv")

tier_plot <- ggplot(by_tier, aes(x = period_number, y = retention_rate, colour = tier)) +
    geom_line() +
    geom_point(aes(size = cohort_users)) +
    scale_y_continuous(labels = scales::percent, limits = c(0, 1)) +
    labs(title = "Retention by tier (cohorts pooled, weighted by size)",
         x = "weeks since signup", y = "retention", size = "cohort users") +
    theme_minimal()
save_plot(tier_plot, out, "retention_by_tier.png")

churn <- query(con, "
    select tier, churn_status, count(*) as users
    from marts.fct_user_churn
    group by tier, churn_status
    order by tier, churn_status")
churn <- churn %>%
    group_by(tier) %>%
    mutate(share = users / sum(users)) %>%
    ungroup()
save_csv(as.data.frame(churn), out, "churn_by_tier.csv")

invisible(dbDisconnect(con))
