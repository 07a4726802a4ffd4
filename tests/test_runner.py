from gbench.training.runner import CollapseWatch


def _watch(coverages):
    watch = CollapseWatch()
    flags = [watch.see(step, {"classes_covered": covered}) for step, covered in coverages]
    return watch.low_since, flags


def test_early_blobs_that_recover_are_not_collapse():
    low_since, flags = _watch([(100, 1), (200, 2), (300, 7), (400, 9)])
    assert low_since is None and flags == [True, True, False, False]


def test_collapse_is_dated_to_the_start_of_the_last_low_stretch():
    assert _watch([(100, 1), (200, 8), (300, 2), (400, 1)])[0] == 300
    assert _watch([(5, 1), (10, 1)])[0] == 5  # a one-image generator: from the first evaluation


def test_no_classifier_means_no_collapse_verdict():
    assert _watch([(100, float("nan")), (200, float("nan"))])[0] is None
