"""runner: what a run reports when Dagster itself, not dbt, fails a step."""

from __future__ import annotations

import warnings

from floe_runtime.runtime.runner import QUIET_RUN_CONFIG, step_error_text


def test_a_failed_step_reports_the_exception_dagster_wrapped() -> None:
    from dagster import asset, materialize

    @asset
    def breaks() -> None:
        raise ValueError("the token endpoint did not answer")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = materialize([breaks], run_config=QUIET_RUN_CONFIG, raise_on_error=False)
    failures = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    assert failures and failures[0] is not None
    # Dagster's own message is only the wrapper ("Error occurred while executing op …:").
    assert "the token endpoint" not in failures[0].error.message
    assert step_error_text(failures[0].error) == "ValueError: the token endpoint did not answer"


def test_no_error_info_still_says_the_step_failed() -> None:
    assert step_error_text(None) == "step failed"
