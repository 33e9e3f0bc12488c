"""Monitoring: drift and data quality between a reference and current data, windows over
the prediction log, performance from feedback, alert rules, alerts and reports."""
