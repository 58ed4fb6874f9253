# Evaluation of every trained stream on its protocol's test list (1 clip per video).


rule evaluate:
    input:
        code=stage_code("evaluate"),
        prepared=lambda w: prepared_inputs(w.dataset, w.stream),
        start=lambda w: start_inputs(w.dataset, w.protocol, w.stream),
        model=str(LAYOUT.model_file("{dataset}", "{protocol}", "{stream}")),
        trained=str(LAYOUT.train_metrics("{dataset}", "{protocol}", "{stream}")),
    output:
        [str(LAYOUT.eval_dir("{dataset}", "{protocol}", "{stream}") / name) for name in EVAL_FILES],
    params:
        values=param_values(lambda w: train_params(w.stream)),
    threads: THREADS
    priority: PRIORITY["evaluate"]
    log:
        "logs/evaluate/{dataset}-{protocol}-{stream}.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} evaluate --dataset {wildcards.dataset} --protocol {wildcards.protocol} --stream {wildcards.stream}"


# The released EPAM-Net weights of a protocol (datasets.<dataset>.released), on the same test list.
rule evaluate_released:
    input:
        code=stage_code("evaluate_released"),
        prepared=lambda w: prepared_inputs(w.dataset, "fusion"),
        weights=lambda w: released_file(PARAMS, w.dataset, w.protocol),
    output:
        [str(LAYOUT.released_eval_dir("{dataset}", "{protocol}") / name) for name in EVAL_FILES],
    params:
        values=param_values(lambda w: released_params(w.dataset)),
    threads: THREADS
    priority: PRIORITY["evaluate"]
    log:
        "logs/evaluate_released/{dataset}-{protocol}.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} evaluate-released --dataset {wildcards.dataset} --protocol {wildcards.protocol}"
