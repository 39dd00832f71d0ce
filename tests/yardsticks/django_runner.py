"""A Django test runner that writes every test's outcome to a JSON file
(``WSGISESSION_YARDSTICK_RESULTS``): ``{test id: outcome}`` with the outcomes
``passed``, ``failed``, ``skipped``, ``xfailed`` (an ``expectedFailure`` that failed)
and ``xpassed``. ``django_suite.py`` copies it into the unpacked source tree as
``wsgisession_runner.py``; Django's own tests are not changed.
"""

import json
import os
import unittest

from django.test.runner import DiscoverRunner

_RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 2, "failed": 3}


class RecordingResult(unittest.TextTestResult):
    outcomes: dict = {}

    def _record(self, test, outcome):
        key = test.id()
        if _RANK[outcome] >= _RANK.get(self.outcomes.get(key, "passed"), 0):
            self.outcomes[key] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "xfailed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "xpassed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record(test, "failed")


class RecordingRunner(DiscoverRunner):
    def get_resultclass(self):
        return RecordingResult

    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        path = os.environ.get("WSGISESSION_YARDSTICK_RESULTS")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(RecordingResult.outcomes, out, indent=0, sort_keys=True)
        return result
