# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type the collection's logic raises for problems a user can fix."""

from __future__ import annotations


class Failure(Exception):
    """A one-line message that says what to fix, plus result keys the failed task still returns."""

    def __init__(self, msg, **result):
        super(Failure, self).__init__(msg)
        self.msg = msg
        self.result = result
