"""Model training (issue 6): `python -m python_jobs.train`, see __main__.py and docs/models.md.

    settings.py   defaults.yml + --config file + flags -> frozen TrainSettings
    data.py       time split, md5 hash sample, streamed typed chunks of the training marts
    features.py   shared preprocessing; export of a fitted pipeline as SQL-scorable terms
    skip.py       logistic regression on marts.fct_play_skip_features
    duration.py   SelectKBest + linear regression on marts.fct_session_training
    store.py      schema ml: run tables, latest-run views, grants
"""

import os

# scikit-learn's OpenMP runtime (libgomp) makes a thread that waits at a barrier spin up to
# 300,000 rounds before it sleeps. On a 2-core machine shared with other jobs the spinning
# thread takes the core its preempted sibling needs: 30 boosting rounds on a million plays
# took 172 s at load 9, against 42 s spinning 1,000 rounds (43 s never spinning, which costs
# about a tenth more on a quieter machine). Set before scikit-learn is imported (libgomp
# reads it once); the same threads, the same arithmetic, the same results. The user's
# setting wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
