"""tests/data holds check files that fail on purpose: gradcli's pytest plugin would collect them
as tests. The plugin itself is tested through pytester (tests/test_pytest_plugin.py)."""

collect_ignore = ["data"]
pytest_plugins = ["pytester"]
