"""How assets keep themselves fresh without anyone clicking.

`AutomationCondition.eager()` only looks at the latest time partition. This platform's default
range is history (2023-01..2023-03) that a brand-new stack must fill on its own, so every asset
uses eager() over the whole configured range instead: missing partitions are requested once
(not retried in a loop if they fail: `since_last_handled`), and anything whose upstream was
updated is rebuilt once its upstream runs have finished.
"""

import dagster as dg

def keep_fresh() -> dg.AutomationCondition:
    return dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
