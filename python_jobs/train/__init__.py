"""Model training (issue 6): `python -m python_jobs.train`, see __main__.py and docs/models.md.

    settings.py   defaults.yml + --config file + flags -> frozen TrainSettings
    data.py       time split, md5 hash sample, streamed typed chunks of the training marts
    features.py   shared preprocessing; export of a fitted pipeline as SQL-scorable terms
    skip.py       logistic regression on marts.fct_play_skip_features
    duration.py   SelectKBest + linear regression on marts.fct_session_training
    store.py      schema ml: run tables, latest-run views, grants
"""
