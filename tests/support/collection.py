"""The collection under test: where it is installed, made importable and visible to Ansible on import.

It comes from KR_COLLECTIONS_PATH (the installed build artifact in scripts/test) or, during development, from
.ansible/collections, where a link to this checkout is made on first use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = Path(os.environ.get('KR_COLLECTIONS_PATH') or REPO / '.ansible' / 'collections')
COLLECTION_ROOT = COLLECTIONS_PATH / 'ansible_collections' / 'kohakuriver' / 'docker'
BIN = Path(sys.executable).parent

if 'KR_COLLECTIONS_PATH' not in os.environ and not COLLECTION_ROOT.exists():
    COLLECTION_ROOT.parent.mkdir(parents=True, exist_ok=True)
    COLLECTION_ROOT.symlink_to(REPO)
sys.path.insert(0, str(COLLECTIONS_PATH))
os.environ['ANSIBLE_COLLECTIONS_PATH'] = str(COLLECTIONS_PATH)
os.environ.setdefault('ANSIBLE_NOCOLOR', '1')
