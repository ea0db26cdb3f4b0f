# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    # The progress options of the modules that stream a whole image (tarball, image_sync); see plugin_utils/progress_action.py.
    DOCUMENTATION = r'''
options:
  progress:
    description:
      - Whether the controller prints the progress of the image stream while the module runs, a line about every 5 s
        (C(bytes done / total, rate, time left)), and one with the figures at the end.
      - V(auto) prints when the output of C(ansible-playbook) is a terminal (Linux controllers), so CI logs stay quiet;
        V(always) prints anyway; V(never) never does.
      - Unset, the variable C(kohakuriver_progress) (inventory, play or C(-e)) decides, then the environment variable
        E(KOHAKURIVER_PROGRESS), else V(auto).
      - To print, the action plugin on the controller runs the module as an async job (as C(async)/C(poll) would) and
        reads its O(progress_file) every 2 s. Not in check mode, and not when the task sets C(async) itself (then it runs
        as usual). Interrupting the play leaves a started job running to its end on the node, as C(async) does.
    type: str
    choices: [auto, always, never]
  progress_file:
    description:
      - A path on the managed node where the module writes its progress while it streams, as JSON, replaced whole
        (renamed over) at most every 2 s and removed at the end. Its keys are C(phase), C(done_bytes), C(total_bytes)
        (null when unknown; for C(docker save) the image size, an estimate, C(total_estimated=true)),
        C(rate_bytes_per_s) (over the last 10 s), C(eta_seconds), C(started) and C(updated) (unix seconds).
      - For tools of your own that watch the module. When O(progress) prints, the action plugin picks a file in the
        job's temporary folder unless this is set. Unset and not printing, no file is written.
    type: path
'''
