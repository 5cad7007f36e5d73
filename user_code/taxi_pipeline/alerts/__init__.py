"""Alerts: what failed, told through the channels people already use.

- `notification.py`: one message, and how it reads in a chat (Slack-compatible webhook JSON)
  and in an email;
- `channels.py`: delivery to the webhook and over SMTP, bounded in time, never raising;
- `runs.py`: what a failed or recovered run was about (assets, partitions, checks, error);
- `sensor.py`: `alert_sensor`, which turns Dagster's own records (run status changes, sensor and
  schedule ticks, the freshness daemon's state) into notifications, without storms or silence.
"""
