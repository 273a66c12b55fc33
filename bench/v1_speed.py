"""RAM v1 spectral score on a stacked-expert tensor: one expert at a time (the previous code path) against the experts
solved in a thread pool, the same float64 Gram and eigvalsh per expert, one run, same input.

    python bench/v1_speed.py [--experts 128] [--rows 768] [--cols 2048] [--threads N]

Prints seconds of each, their ratio, and whether the scores agree exactly; the load average says what else ran.
"""
import argparse
import os
import time

import numpy as np

from ram.baselines import _one_blas_thread, spectral_concentration


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--experts', type=int, default=128)
    p.add_argument('--rows', type=int, default=768)
    p.add_argument('--cols', type=int, default=2048)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    a = p.parse_args()
    w = np.random.default_rng(0).standard_normal((a.experts, a.rows, a.cols), dtype=np.float32)
    print(f'stacked experts {a.experts} x {a.rows} x {a.cols}, {os.cpu_count()} CPUs, '
          f'load average before: {os.getloadavg()[0]:.2f}')
    with _one_blas_thread():                       # as ram_v1_scores runs them
        t0 = time.perf_counter()
        one = spectral_concentration(w, threads=1)
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        many = spectral_concentration(w, threads=a.threads)
        t_many = time.perf_counter() - t0
    print(f'one expert at a time : {t_one:8.2f} s  ({a.experts / t_one:.1f} experts/s)')
    print(f'{a.threads} threads{"":12}: {t_many:8.2f} s  ({a.experts / t_many:.1f} experts/s)')
    print(f'speed-up {t_one / t_many:.2f}x; scores {"identical" if one == many else f"differ: {one} vs {many}"}; '
          f'load average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
