"""How assets keep themselves fresh without anyone clicking.

Dagster's `eager()` and `on_missing()` deliberately ignore partitions that were already missing
when the condition was first applied, and look only at the latest time partition. This
platform's default range is history (2023-01..2023-03) that a brand-new stack must fill on its
own, so assets use `keep_fresh()` instead, over the whole configured range:

- a partition that is missing, and whose last run did not fail, is requested (a failed download
  is not retried every tick: it waits for an upstream change or a manual run);
- a partition whose upstream was updated since it was last handled is requested again;
- never while an upstream is missing or in progress, nor while it is in progress itself.
"""

import dagster as dg


def keep_fresh() -> dg.AutomationCondition:
    missing_not_failed = (
        dg.AutomationCondition.missing() & ~dg.AutomationCondition.execution_failed()
    )
    return (
        (missing_not_failed | dg.AutomationCondition.any_deps_updated().since_last_handled())
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("keep_fresh")
