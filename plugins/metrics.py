"""gbench's built-in evaluation metrics, registered through ``gbench_register_metrics`` exactly as a third party's.

Each metric reads the features the evaluation computed once (and the real
side's cached statistics and radii); the heavy parts live in
:mod:`gbench.evaluation` (imported when a metric runs, not when plugins load,
so ``gbench show`` stays quick). A metric that its settings turn off (KID with
``kid_subsets=0``, precision/recall with ``precision_recall=False``, FID-infinity
unless asked for, the class metrics without a domain classifier) writes NaN,
never 0.
"""

from __future__ import annotations

import math
from typing import Any

from gbench import hookimpl
from gbench.plugins.registry import Metric, MetricColumn, MetricInputs

NAN = math.nan


def fid(inputs: MetricInputs) -> dict[str, Any]:
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    fake_statistics = fid_features_to_statistics(inputs.fake_features)
    return {"fid": float(fid_statistics_to_metric(fake_statistics, inputs.real_statistics, False)[KEY_METRIC_FID])}


def fid_infinity(inputs: MetricInputs) -> dict[str, Any]:
    if not inputs.settings.fid_infinity:
        return {"fid_infinity": NAN}
    from gbench.evaluation.fidinfinity import fid_infinity as extrapolated

    return {"fid_infinity": extrapolated(inputs.fake_features, inputs.real_statistics, seed=inputs.seed)}


def kid(inputs: MetricInputs) -> dict[str, Any]:
    settings = inputs.settings
    if settings.kid_subsets == 0:
        return {"kid_mean": NAN, "kid_std": NAN}
    fake, real = inputs.fake_features, inputs.real_features
    # torch-fidelity raises when a subset is larger than a set
    subset_size = min(settings.kid_subset_size, len(fake), len(real))
    if settings.kid_pr_impl == "torch-fidelity":
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

        values = kid_features_to_metric(
            fake,
            real,
            kid_subsets=settings.kid_subsets,
            kid_subset_size=subset_size,
            rng_seed=inputs.seed,
            verbose=False,
        )
        return {"kid_mean": float(values[KEY_METRIC_KID_MEAN]), "kid_std": float(values[KEY_METRIC_KID_STD])}
    from gbench.evaluation import featuremetrics

    mean, std = featuremetrics.kid(fake, real, settings.kid_subsets, subset_size, seed=inputs.seed)
    return {"kid_mean": mean, "kid_std": std}


def precision_recall(inputs: MetricInputs) -> dict[str, Any]:
    if not inputs.settings.precision_recall:
        return {"precision": NAN, "recall": NAN, "density": NAN, "coverage": NAN}
    from gbench.evaluation import featuremetrics
    from gbench.evaluation.fidelity import PRC_NEIGHBORHOOD

    # Measured on unit-length features, so that images unlike any digit cannot hide near the origin
    # (featuremetrics.unit_length).
    fake, real = featuremetrics.unit_length(inputs.fake_features), featuremetrics.unit_length(inputs.real_features)
    if inputs.settings.kid_pr_impl == "torch-fidelity":  # torch-fidelity has no density and coverage
        from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

        values = prc_features_to_metric(fake, real, prc_neighborhood=PRC_NEIGHBORHOOD, save_cpu_ram=True, verbose=False)
        return {
            "precision": float(values[KEY_METRIC_PRECISION]),
            "recall": float(values[KEY_METRIC_RECALL]),
            "density": NAN,
            "coverage": NAN,
        }
    balls = featuremetrics.neighbourhood_metrics(fake, real, PRC_NEIGHBORHOOD, inputs.real_radii(PRC_NEIGHBORHOOD))
    return {"precision": balls.precision, "recall": balls.recall, "density": balls.density, "coverage": balls.coverage}


def classes(inputs: MetricInputs) -> dict[str, Any]:
    if inputs.fake_logits is None or inputs.real_class_counts is None:
        return {"inception_score": NAN, "classes_covered": NAN, "class_kl": NAN, "class_counts": []}
    from gbench.evaluation import classmetrics

    counts, covered, kl = classmetrics.mode_coverage(inputs.fake_logits.argmax(dim=1), inputs.real_class_counts)
    score = classmetrics.classifier_inception_score(inputs.fake_logits)
    return {"inception_score": score, "classes_covered": covered, "class_kl": kl, "class_counts": counts}


def stacked_modes(inputs: MetricInputs) -> dict[str, Any]:
    # Only Stacked MNIST has the 1,000 modes (three digits, one per channel); any other data set's row leaves them NaN.
    from gbench.evaluation.stacked_modes import STACKED_DATASET, stacked_mnist_modes

    if inputs.dataset != STACKED_DATASET or inputs.samples is None:
        return {"stacked_modes_covered": NAN, "stacked_mode_kl": NAN}
    return stacked_mnist_modes(inputs.samples)


# The conditional metrics (gbench.evaluation.conditional): they need "sample_labels", so an unconditional
# evaluation never calls them (their columns are NaN there); each class's values go to a text column.


def label_accuracy(inputs: MetricInputs) -> dict[str, Any]:
    labels = inputs.sample_labels
    if inputs.fake_logits is None or labels is None:  # no domain classifier for this data set, or unconditional
        return {"label_accuracy": NAN, "label_accuracy_per_class": []}
    from gbench.evaluation import conditional

    overall, per_class = conditional.label_accuracy(inputs.fake_logits.argmax(dim=1), labels, inputs.num_classes)
    return {"label_accuracy": overall, "label_accuracy_per_class": conditional.per_class_list(per_class)}


def intra_fid(inputs: MetricInputs) -> dict[str, Any]:
    labels = inputs.sample_labels
    if labels is None or inputs.real_labels is None:  # unconditional, or the real images' classes are unknown
        return {"intra_fid": NAN, "intra_fid_per_class": [], "intra_fid_samples": NAN, "class_sample_counts": []}
    from gbench.evaluation import conditional

    values, counts = conditional.intra_class_fid(
        inputs.fake_features, labels, inputs.real_features, inputs.real_labels, inputs.num_classes
    )
    return {
        "intra_fid": conditional.mean_over_classes(values),
        "intra_fid_per_class": conditional.per_class_list(values),
        "intra_fid_samples": min(generated for generated, _ in counts),
        "class_sample_counts": [f"{generated}/{real}" for generated, real in counts],
    }


def class_coverage(inputs: MetricInputs) -> dict[str, Any]:
    # the k-NN family, off with precision_recall=False as the overall coverage (evaluations during training)
    labels = inputs.sample_labels
    if labels is None or inputs.real_labels is None or not inputs.settings.precision_recall:
        return {"class_coverage": NAN, "class_coverage_min": NAN, "class_coverage_per_class": []}
    from gbench.evaluation import conditional
    from gbench.evaluation.fidelity import PRC_NEIGHBORHOOD

    values = conditional.class_coverage(
        inputs.fake_features,
        labels,
        inputs.real_features,
        inputs.real_labels,
        inputs.num_classes,
        PRC_NEIGHBORHOOD,
    )
    return {
        "class_coverage": conditional.mean_over_classes(values),
        "class_coverage_min": conditional.min_over_classes(values),
        "class_coverage_per_class": conditional.per_class_list(values),
    }


CONDITIONAL = (
    Metric(
        "label_accuracy",
        (
            MetricColumn(
                "label_accuracy",
                "higher",
                "label acc",
                ".3f",
                "conditional generators: share of samples the domain classifier labels as the class they were "
                "generated for; NaN for unconditional runs",
            ),
            MetricColumn(
                "label_accuracy_per_class",
                "",
                "",
                "s",
                "label_accuracy of each requested class, class 0 first, space-separated",
                text=True,
            ),
        ),
        label_accuracy,
        needs=("labels", "sample_labels"),
        description="conditional generators: does a sample generated for class y look like a y to the dataset's LeNet",
    ),
    Metric(
        "intra_fid",
        (
            MetricColumn(
                "intra_fid",
                "lower",
                "intra-FID",
                ".2f",
                "conditional generators: mean over classes of FID(samples generated for y, real images of y), "
                "fid_extractor's features, intra_fid_samples per class; NaN for unconditional runs",
            ),
            MetricColumn("intra_fid_per_class", "", "", "s", "intra-class FID of each class, class 0 first", text=True),
            MetricColumn(
                "intra_fid_samples",
                "",
                "",
                ",.0f",
                "generated samples per class the intra-class FIDs saw (the fewest, when classes differ): "
                "FID is biased upwards at small counts",
            ),
            MetricColumn(
                "class_sample_counts",
                "",
                "",
                "s",
                "per class, class 0 first: generated/real images its intra-class FID compared",
                text=True,
            ),
        ),
        intra_fid,
        needs=("features", "sample_labels"),
        description="conditional generators: intra-class FID (Miyato & Koyama 2018), mean over classes",
    ),
    Metric(
        "class_coverage",
        (
            MetricColumn(
                "class_coverage",
                "higher",
                "cls cover",
                ".3f",
                "conditional generators: mean over classes y of the coverage of the real y images by the samples "
                "generated for y (k=3 balls within class y); NaN for unconditional runs",
            ),
            MetricColumn("class_coverage_min", "higher", "", ".3f", "the least covered class's class coverage"),
            MetricColumn(
                "class_coverage_per_class", "", "", "s", "class coverage of each class, class 0 first", text=True
            ),
        ),
        class_coverage,
        needs=("features", "sample_labels"),
        description="conditional generators: coverage (Naeem et al. 2020) within each class, mean and minimum",
    ),
)


BUILTIN = (
    Metric(
        "fid",
        (
            MetricColumn(
                "fid", "lower", "FID", ".2f", "Fréchet distance between the real and generated feature distributions"
            ),
        ),
        fid,
        description="Fréchet Inception Distance (Heusel et al. 2017), on the chosen extractor's features",
    ),
    Metric(
        "fid_infinity",
        (
            MetricColumn(
                "fid_infinity",
                "lower",
                "FID∞",
                ".2f",
                "FID extrapolated to infinitely many samples; NaN unless --fid-infinity",
            ),
        ),
        fid_infinity,
        description="FID-infinity (Chong & Forsyth 2020): the intercept of FID = a + b/N over 15 subset sizes",
    ),
    Metric(
        "kid",
        (
            MetricColumn(
                "kid_mean",
                "lower",
                "KID×10³",
                "x1000:.2f",
                "Kernel Inception Distance: mean over subsets (unbiased MMD², cubic kernel); "
                "tables show it times 1000, as papers do",
            ),
            MetricColumn("kid_std", "", "", "x1000:.2f", "KID's standard deviation over subsets (tables: times 1000)"),
        ),
        kid,
        description="Kernel Inception Distance (Bińkowski et al. 2018)",
    ),
    Metric(
        "precision_recall",
        (
            MetricColumn(
                "precision", "higher", "prec", ".3f", "share of generated samples inside the real k-NN balls (k=3)"
            ),
            MetricColumn("recall", "higher", "recall", ".3f", "share of real samples inside the generated k-NN balls"),
            MetricColumn(
                "density", "higher", "density", ".3f", "mean number of real balls a generated sample falls in, over k"
            ),
            MetricColumn(
                "coverage", "higher", "cover", ".3f", "share of real samples whose ball holds a generated one"
            ),
        ),
        precision_recall,
        description="improved precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020)",
    ),
    Metric(
        "classes",
        (
            MetricColumn(
                "inception_score", "higher", "", ".3f", "Inception Score of the domain classifier's predictions"
            ),
            MetricColumn(
                "classes_covered",
                "higher",
                "classes",
                "s",
                "classes getting at least half their expected share",
                mean_format=".1f",
            ),
            MetricColumn("class_kl", "lower", "", ".3f", "KL(generated || real class distribution), nats"),
            MetricColumn(
                "class_counts", "", "", "s", "generated samples per predicted class, space-separated", text=True
            ),
        ),
        classes,
        needs=("labels",),
        description="mode coverage, class KL and classifier Inception Score from the dataset's LeNet",
    ),
    Metric(
        "stacked_modes",
        (
            MetricColumn(
                "stacked_modes_covered",
                "higher",
                "modes",
                ".0f",
                "Stacked MNIST: modes (digit triples) with at least one of the fid_samples generated samples, "
                "of 1,000; NaN on other data sets",
                mean_format=".1f",
            ),
            MetricColumn(
                "stacked_mode_kl",
                "lower",
                "mode KL",
                ".3f",
                "Stacked MNIST: KL(p_gen || uniform over 1,000 modes) in nats, the papers' (reverse) direction; "
                "NaN on other data sets",
            ),
        ),
        stacked_modes,
        needs=("samples",),
        datasets=("stacked-mnist",),
        description="Stacked MNIST's modes covered and mode KL (VEEGAN, PacGAN) on every evaluated sample: "
        "--eval-samples 26000 is the papers' protocol",
    ),
)


@hookimpl
def gbench_register_metrics(register):
    for metric in (*BUILTIN, *CONDITIONAL):
        register(metric)
