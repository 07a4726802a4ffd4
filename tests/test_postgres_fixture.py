import pytest


@pytest.mark.postgres
def test_postgres_fixture_is_a_real_server(postgres_url):
    import optuna

    study = optuna.create_study(storage=postgres_url, study_name="probe")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(storage=postgres_url, study_name="probe").trials) == 2
