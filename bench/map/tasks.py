"""The functions the map benchmark runs, shared by gust and every peer.

A plain module (not __main__) so the process pools can import them in their
workers and gust ships it with each map as a local module."""
import time

# Set by calibrate(): loop iterations that take ~5 ms of CPU on this machine.
BURN_LOOPS = 60_000


def noop(x):
    return x


def burn(n):
    """Pure-Python CPU work: n loop iterations (calibrated to ~5 ms)."""
    acc = 0
    for i in range(n):
        acc += i * i
    return acc & 0xFFFF


def sleep1(x):
    """An I/O-bound task (the article's scraping): waits 1 s."""
    time.sleep(1.0)
    return x


def calibrate(target_s=0.005, rounds=7):
    """Loop count for ~target_s of CPU in burn(), measured here (median)."""
    n = 20_000
    samples = []
    for _ in range(rounds):
        t0 = time.process_time()
        burn(n)
        samples.append(time.process_time() - t0)
    samples.sort()
    per_loop = samples[len(samples) // 2] / n
    return max(1000, int(target_s / per_loop))


def knn_data():
    """The article's data: two noisy half moons, half for training."""
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split
    X, y = make_moons(n_samples=1000, noise=0.35, random_state=0)
    return train_test_split(X, y, test_size=0.5, random_state=0)


def train_knn(hyperparams, Xtrain, ytrain):
    from sklearn.neighbors import KNeighborsClassifier
    classifier = KNeighborsClassifier(**hyperparams)
    classifier.fit(Xtrain, ytrain)
    return classifier
