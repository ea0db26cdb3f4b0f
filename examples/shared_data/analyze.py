"""A small analysis a task runs on a runner: fit a line to noisy data with numpy and report it.

Run as a task in the python-data-science environment:
    ansible-playbook -i inventories/local kohakuriver.docker.task_submit \
        -e kr_node=runner1 -e kr_env=python-data-science -e 'kr_command="python /shared/analyze.py"'
"""

import platform
import socket

import numpy as np


def main():
    rng = np.random.default_rng(seed=42)
    x = np.linspace(0.0, 10.0, 1000)
    y = 3.0 * x + 2.0 + rng.normal(scale=1.5, size=x.size)
    design = np.column_stack([x, np.ones_like(x)])
    solution = np.linalg.lstsq(design, y, rcond=None)
    slope, intercept = solution[0]
    rmse = float(np.sqrt(solution[1][0] / x.size))
    print('host %s, Python %s, numpy %s' % (socket.gethostname(), platform.python_version(), np.__version__))
    print('samples %d, mean %.3f, std %.3f' % (y.size, y.mean(), y.std()))
    print('fit y = %.3f * x + %.3f (rmse %.3f; true: 3 * x + 2)' % (slope, intercept, rmse))


if __name__ == '__main__':
    main()
