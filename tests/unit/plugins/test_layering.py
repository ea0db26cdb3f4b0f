"""The layering rule, read from the table in CONTRIBUTING.md's "Layers" section, checked against every import in plugins/.

Imports are read with ast, at a file's top and inside functions alike: AnsiballZ ships both, so both shape a payload.
"""

from __future__ import annotations

import ast
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
RULE_FILE = REPO / 'CONTRIBUTING.md'
TABLE = "CONTRIBUTING.md's Layers table"
UTILS = REPO / 'plugins' / 'module_utils'
MODULES = REPO / 'plugins' / 'modules'
PACKAGE = 'ansible_collections.kohakuriver.docker.plugins.module_utils'
MODULES_GLOB = 'plugins/modules/*'

Import = collections.namedtuple('Import', 'source target line in_function')


class Rule(object):
    """The table: file -> layer and group, the allowed edges within a layer, the owners of third-party packages."""

    def __init__(self, text):
        block = re.search(r'^## Layers\n.*?^```layers\n(.*?)^```', text, re.S | re.M)
        if not block:
            raise AssertionError('CONTRIBUTING.md has no "## Layers" section with a ```layers block')
        self.layer_of, self.group_of, self.layer_name = {}, {}, {}
        self.allowed = {}  # (source, target) -> True when only an import inside a function is allowed
        self.owner = {}  # package -> (its owning files, space-separated; in a function only)
        groups = collections.defaultdict(str)  # layer -> its groups, the text of all its lines
        for number, line in enumerate(block.group(1).splitlines(), 1):
            words = line.split()
            layer = re.match(r'(\d+) ([^:]+):(.*)$', line)
            if layer:
                self.layer_name[int(layer.group(1))] = layer.group(2).strip()
                groups[int(layer.group(1))] += ' ' + layer.group(3)
            elif words[:1] == ['allow'] and len(words) in (4, 7) and words[2] == '->':
                self.allowed[(words[1], words[3])] = words[4:] == ['in', 'a', 'function']
            elif words[:1] == ['only'] and 'imports' in words[2:-1]:
                packages = words[words.index('imports') + 1:]
                in_function = packages[-3:] == ['in', 'a', 'function']
                for package in packages[:-3] if in_function else packages:
                    self.owner[package] = (' '.join(words[1:words.index('imports')]), in_function)
            elif words:
                raise AssertionError('%s, line %d of its block: cannot read %r' % (TABLE, number, line))
        for layer, text in groups.items():
            self._add_layer(layer, text)

    def _add_layer(self, layer, groups):
        for group in groups.split('|'):
            names = group.split()
            if names == [MODULES_GLOB]:
                names = [module_label(path) for path in sorted(MODULES.glob('*.py'))]
                for label in names:
                    self._place(label, layer, label)
                continue
            for label in names:
                self._place(label, layer, names[0])

    def _place(self, label, layer, group):
        if label in self.layer_of:
            raise AssertionError('%s names %s twice' % (TABLE, label))
        self.layer_of[label], self.group_of[label] = layer, group

    def describe(self, label):
        return '%s (layer %d, %s)' % (label, self.layer_of[label], self.layer_name[self.layer_of[label]])

    def files_of_layer(self, name):
        return set(label for label, layer in self.layer_of.items() if self.layer_name[layer] == name)


def module_label(path):
    return 'modules/' + path.stem


def file_of(label):
    return 'plugins/%s.py' % label if label.startswith('modules/') else 'plugins/module_utils/%s.py' % label


def sources():
    found = dict((path.stem, path) for path in sorted(UTILS.glob('*.py')) if path.name != '__init__.py')
    found.update((module_label(path), path) for path in sorted(MODULES.glob('*.py')) if path.name != '__init__.py')
    return found


def imports_of(label, path):
    """Every import of the file: targets are module_utils names or dotted names from elsewhere."""
    found = []

    def add(name, node, in_function):
        if name.startswith(PACKAGE + '.'):
            name = name[len(PACKAGE) + 1:].split('.')[0]
        found.append(Import(label, name, node.lineno, in_function))

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, in_function)
            elif isinstance(child, ast.ImportFrom):
                module = child.module or ''
                if child.level:  # relative: from the module_utils package or a sibling of the file
                    module = PACKAGE + ('.' + module if module else '') if path.parent == UTILS else module
                if module == PACKAGE:
                    for alias in child.names:
                        add(PACKAGE + '.' + alias.name, child, in_function)
                elif module != '__future__':
                    add(module, child, in_function)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def where(edge):
    return '%s:%d%s' % (file_of(edge.source), edge.line, ' (in a function)' if edge.in_function else '')


@pytest.fixture(scope='module')
def rule():
    return Rule(RULE_FILE.read_text())


@pytest.fixture(scope='module')
def imports():
    found = []
    for label, path in sources().items():
        found.extend(imports_of(label, path))
    return found


@pytest.fixture(scope='module')
def internal(imports):
    files = sources()
    return [edge for edge in imports if edge.target in files]


def graph_of(edges):
    graph = collections.defaultdict(dict)
    for edge in edges:
        graph[edge.source].setdefault(edge.target, edge)
    return graph


def test_every_file_has_a_layer(rule):
    files = sources()
    problems = ['assign %s a layer in %s' % (file_of(label), TABLE) for label in files if label not in rule.layer_of]
    problems += ['%s places %s, but there is no such file: take it out' % (TABLE, file_of(label))
                 for label in rule.layer_of if label not in files]
    problems += ['allow %s -> %s: %s names a file the table does not place' % (pair + (name,))
                 for pair in rule.allowed for name in pair if name not in rule.layer_of]
    assert not problems, '\n'.join(problems)


def layer_problems(rule, edges):
    problems = []
    for edge in edges:
        source, target = edge.source, edge.target
        if source == target or source not in rule.layer_of or target not in rule.layer_of:
            continue  # unplaced files fail test_every_file_has_a_layer
        if rule.layer_of[source] < rule.layer_of[target]:
            problems.append('%s imports %s from %s: a lower layer never imports a higher one'
                            % (where(edge), rule.describe(target), rule.describe(source)))
        elif rule.layer_of[source] == rule.layer_of[target] and rule.group_of[source] != rule.group_of[target]:
            only_in_function = rule.allowed.get((source, target))
            if only_in_function is None:
                problems.append('%s imports %s sideways: files of different groups in one layer never import each other'
                                ' (%s has no "allow %s -> %s")' % (where(edge), rule.describe(target), TABLE, source, target))
            elif only_in_function and not edge.in_function:
                problems.append('%s imports %s at its top: %s allows it inside a function only' % (where(edge), target, TABLE))
    return problems


def test_imports_go_to_lower_layers(rule, internal):
    problems = layer_problems(rule, internal)
    assert not problems, '\n'.join(problems)


def cycles_of(graph):
    """Strongly connected components of more than one file (Tarjan), each as a sorted list of files."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, {})):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def cycle_problems(edges):
    graph = graph_of(edge for edge in edges if edge.source != edge.target)
    problems = []
    for component in cycles_of(graph):
        members = set(component)
        found = ['%s -> %s (%s)' % (edge.source, edge.target, where(edge))
                 for source in component for target, edge in sorted(graph[source].items()) if target in members]
        problems.append('import cycle among %s: %s' % (', '.join(component), '; '.join(found)))
    return problems


def test_no_import_cycle(internal):
    problems = cycle_problems(internal)
    assert not problems, '\n'.join(problems)


def owner_problems(rule, imports, files):
    problems = []
    for edge in imports:
        top = edge.target.split('.')[0]
        if edge.target in files or top in sys.stdlib_module_names:
            continue
        owner = rule.owner.get(top)
        if owner is None:
            problems.append('%s imports %s, which is neither the standard library nor this collection nor a package'
                            ' %s gives an owner ("only <file> imports %s")' % (where(edge), edge.target, TABLE, top))
        elif edge.source not in owner[0].split():
            problems.append('%s imports %s: only %s imports %s (%s)' % (where(edge), edge.target, owner[0], top, TABLE))
        elif owner[1] and not edge.in_function:
            problems.append('%s imports %s at its top: %s imports it inside a function only (%s)'
                            % (where(edge), edge.target, owner[0], TABLE))
    return problems


def test_third_party_imports_have_one_owner(rule, imports):
    problems = owner_problems(rule, imports, sources())
    assert not problems, '\n'.join(problems)


def shipped(graph, start):
    """Every file the payload of `start` holds, each with the import path that brings it in."""
    path_to = {start: [start]}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph.get(node, {})):
            if target not in path_to:
                path_to[target] = path_to[node] + [target]
                queue.append(target)
    del path_to[start]
    return path_to


def fragments_of(path):
    """The doc fragments a module's DOCUMENTATION extends."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == ['DOCUMENTATION']:
            return yaml.safe_load(node.value.value).get('extends_documentation_fragment') or []
    raise AssertionError('%s has no DOCUMENTATION' % path)


def test_read_only_modules_ship_no_use_case_they_do_not_call(rule, internal):
    graph = graph_of(internal)
    use_cases = rule.files_of_layer('use cases')
    problems = []
    for label, path in sorted(sources().items()):
        if not label.startswith('modules/') or 'kohakuriver.docker.attributes.info_module' not in fragments_of(path):
            continue
        called = set(rule.group_of[target] for target in graph.get(label, {}) if target in use_cases)
        extra = {}  # use case -> the shortest import path that ships one of its files
        for target, via in shipped(graph, label).items():
            group = rule.group_of.get(target)
            if target in use_cases and group not in called and len(via) < len(extra.get(group, via + [None])):
                extra[group] = via
        problems += ['%s (read-only) ships use case %s, which it does not call: %s'
                     % (file_of(label), group, ' -> '.join(via)) for group, via in sorted(extra.items())]
    assert not problems, '\n'.join(problems)


def test_modules_without_connection_options_ship_no_docker_client(rule, internal):
    graph = graph_of(internal)
    problems = []
    for label, path in sorted(sources().items()):
        if not label.startswith('modules/') or 'kohakuriver.docker.docker' in fragments_of(path):
            continue
        for target, via in sorted(shipped(graph, label).items()):
            if rule.layer_of.get(target) == rule.layer_of['client']:
                problems.append('%s takes no connection options but ships %s: %s'
                                % (file_of(label), target, ' -> '.join(via)))
    assert not problems, '\n'.join(problems)


def test_the_graph_is_what_ansiballz_ships(internal):
    """The graph these tests read is the payload ansible-core builds (scripts/payload-sizes), file for file."""
    completed = subprocess.run([str(REPO / 'scripts' / 'payload-sizes')], capture_output=True, text=True, check=False,
                               env=dict(os.environ, KR_VENV=str(Path(sys.executable).parents[1])))
    assert completed.returncode == 0, completed.stderr
    payloads = dict(('modules/' + m.group(1), set(m.group(2).split()))
                    for m in re.finditer(r'^(\w+) \(\d+\): (.*)$', completed.stdout, re.M))
    graph = graph_of(internal)
    modules = sorted(label for label in sources() if label.startswith('modules/'))
    assert sorted(payloads) == modules, completed.stdout
    problems = ['%s: its imports give %s, ansible-core ships %s' % (label, sorted(shipped(graph, label)), sorted(payloads[label]))
                for label in modules if set(shipped(graph, label)) != payloads[label]]
    assert not problems, '\n'.join(problems)


SAMPLE_RULE = """## Layers
```layers
3 use cases: one | two
2 docker:    client | daemon
1 leaves:    errors
1 leaves:    names
allow daemon -> client in a function
only client imports docker
only client imports paramiko in a function
```
"""


def test_the_checks_catch_every_kind_of_bad_import():
    rule = Rule(SAMPLE_RULE)
    assert rule.group_of['errors'] == rule.group_of['names'] != rule.group_of['client']
    edges = [Import('names', 'errors', 1, False), Import('one', 'errors', 2, False), Import('daemon', 'client', 3, True),
             Import('names', 'one', 4, False), Import('one', 'two', 5, True), Import('client', 'daemon', 6, False),
             Import('daemon', 'client', 7, False)]
    assert layer_problems(rule, edges) == [
        'plugins/module_utils/names.py:4 imports one (layer 3, use cases) from names (layer 1, leaves): a lower layer never imports a higher one',
        'plugins/module_utils/one.py:5 (in a function) imports two (layer 3, use cases) sideways: files of different groups in one layer'
        ' never import each other (%s has no "allow one -> two")' % TABLE,
        'plugins/module_utils/client.py:6 imports daemon (layer 2, docker) sideways: files of different groups in one layer'
        ' never import each other (%s has no "allow client -> daemon")' % TABLE,
        'plugins/module_utils/daemon.py:7 imports client at its top: %s allows it inside a function only' % TABLE]
    assert cycle_problems(edges) == [
        'import cycle among client, daemon: client -> daemon (plugins/module_utils/client.py:6);'
        ' daemon -> client (plugins/module_utils/daemon.py:3 (in a function))']
    imports = edges + [Import('one', 'docker.errors', 8, True), Import('client', 'docker', 9, False), Import('client', 'json', 10, False),
                       Import('client', 'paramiko', 11, False), Import('client', 'paramiko', 12, True), Import('two', 'yaml', 13, False)]
    assert owner_problems(rule, imports, set(rule.layer_of)) == [
        'plugins/module_utils/one.py:8 (in a function) imports docker.errors: only client imports docker (%s)' % TABLE,
        'plugins/module_utils/client.py:11 imports paramiko at its top: client imports it inside a function only (%s)' % TABLE,
        'plugins/module_utils/two.py:13 imports yaml, which is neither the standard library nor this collection nor a package'
        ' %s gives an owner ("only <file> imports yaml")' % TABLE]
