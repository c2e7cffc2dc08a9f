# Engagement, listening quality and playlist funnel charts from the marts.
#
#   Rscript r_scripts/visualization.R [OUTPUT_DIR]
#
# Reads marts.fct_dau_mau, marts.fct_skip_rates, marts.fct_playlist_funnel and
# marts.fct_playlist_dropoff. Writes:
#   dau_mau.png, stickiness_by_tier.png, skip_rate_by_genre.png, skip_rate_by_hour.png,
#   skip_rate_by_segment.png, playlist_funnel.png, playlist_dropoff.png
#   kpis.csv (latest day's DAU/WAU/MAU and stickiness), skip_rates.csv, playlist_funnel.csv

script_dir <- function() {
    file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
    if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[[1]]))) else "r_scripts"
}
source(file.path(script_dir(), "common.R"))

con <- warehouse_connect()
out <- output_dir()

# --- engagement ---------------------------------------------------------------------------
dau_mau <- query(con, "
    select activity_date, segment_type, segment_value, dau, wau, mau, stickiness,
        is_full_window
    from marts.fct_dau_mau
    where segment_type in ('overall', 'tier')
    order by activity_date")
overall <- dau_mau[dau_mau$segment_type == "overall", ]
latest <- overall[overall$activity_date == max(overall$activity_date), ]
save_csv(latest[, c("activity_date", "dau", "wau", "mau", "stickiness", "is_full_window")],
         out, "kpis.csv")

long <- rbind(
    data.frame(activity_date = overall$activity_date, measure = "DAU", users = overall$dau),
    data.frame(activity_date = overall$activity_date, measure = "WAU", users = overall$wau),
    data.frame(activity_date = overall$activity_date, measure = "MAU", users = overall$mau)
)
trend <- ggplot(long, aes(x = activity_date, y = users, colour = measure)) +
    geom_line() +
    # The first 27 days' MAU window is cut by the start of the data: mark it.
    geom_vline(xintercept = min(overall$activity_date[overall$is_full_window]),
               linetype = "dotted", colour = "grey40") +
    labs(title = "Daily, weekly (7 d) and monthly (28 d) active users",
         subtitle = "dotted line: first day with a complete 28-day window", x = NULL,
         y = "active users") +
    theme_minimal()
save_plot(trend, out, "dau_mau.png")

tiers <- dau_mau[dau_mau$segment_type == "tier" & dau_mau$is_full_window, ]
sticky <- ggplot(tiers, aes(x = activity_date, y = stickiness, colour = segment_value)) +
    geom_line() +
    scale_y_continuous(labels = scales::percent) +
    labs(title = "Stickiness (DAU / MAU) by tier, full 28-day windows", x = NULL,
         y = "DAU / MAU", colour = "tier") +
    theme_minimal()
save_plot(sticky, out, "stickiness_by_tier.png")

# --- skip rates -----------------------------------------------------------------------------
skips <- query(con, "
    select dimension, dimension_value, play_count, skip_count, skip_rate
    from marts.fct_skip_rates
    order by dimension, dimension_value")
save_csv(skips, out, "skip_rates.csv")

genre <- skips[skips$dimension == "genre", ]
genre_plot <- ggplot(genre, aes(x = skip_rate, y = reorder(dimension_value, skip_rate))) +
    geom_col(fill = "#3182bd") +
    scale_x_continuous(labels = scales::percent) +
    labs(title = "Skip rate by genre", x = "skipped plays / plays", y = NULL) +
    theme_minimal()
save_plot(genre_plot, out, "skip_rate_by_genre.png", height = 6)

hour <- skips[skips$dimension == "hour_of_day", ]
hour_plot <- ggplot(hour, aes(x = as.integer(dimension_value), y = skip_rate)) +
    geom_col(fill = "#6baed6") +
    scale_y_continuous(labels = scales::percent) +
    labs(title = "Skip rate by hour of day (UTC)", x = "hour", y = "skip rate") +
    theme_minimal()
save_plot(hour_plot, out, "skip_rate_by_hour.png")

segments <- skips[skips$dimension %in% c("tier", "context_type", "position_band", "weekday"), ]
segment_plot <- ggplot(segments, aes(x = skip_rate, y = dimension_value)) +
    geom_col(fill = "#9ecae1") +
    facet_wrap(~dimension, scales = "free_y") +
    scale_x_continuous(labels = scales::percent) +
    labs(title = "Skip rate by segment", x = "skip rate", y = NULL) +
    theme_minimal()
save_plot(segment_plot, out, "skip_rate_by_segment.png", width = 10, height = 6)

# --- playlist funnel ------------------------------------------------------------------------
funnel <- query(con, "
    select stage_number, stage_name, run_count, conversion_from_start_rate,
        conversion_from_previous_rate, drop_off_from_previous_rate
    from marts.fct_playlist_funnel
    where segment_type = 'all'
    order by stage_number")
save_csv(funnel, out, "playlist_funnel.csv")
funnel_plot <- ggplot(funnel, aes(x = run_count, y = reorder(stage_name, -stage_number))) +
    geom_col(fill = "#31a354") +
    geom_text(aes(label = sprintf("%.0f%%", 100 * conversion_from_start_rate)), hjust = -0.1) +
    expand_limits(x = max(funnel$run_count) * 1.1) +
    labs(title = "Playlist completion funnel (runs reaching each stage)", x = "runs", y = NULL) +
    theme_minimal()
save_plot(funnel_plot, out, "playlist_funnel.png")

dropoff <- query(con, "
    select from_track_ordinal, at_risk_run_count, drop_off_rate, is_largest_drop_off_step
    from marts.fct_playlist_dropoff
    where segment_type = 'all' and drop_off_rate is not null
    order by from_track_ordinal")
dropoff_plot <- ggplot(dropoff, aes(x = from_track_ordinal, y = drop_off_rate,
                                    fill = is_largest_drop_off_step)) +
    geom_col() +
    scale_fill_manual(values = c(`FALSE` = "#a1d99b", `TRUE` = "#de2d26"),
                      name = "largest drop-off") +
    scale_y_continuous(labels = scales::percent) +
    labs(title = "Drop-off after track k (runs that could go on)", x = "track k",
         y = "P(stop at k)") +
    theme_minimal()
save_plot(dropoff_plot, out, "playlist_dropoff.png")

invisible(dbDisconnect(con))
