# Training: the two X-ShiftNet streams, then EPAM-Net initialised from both (or each from
# train.<stream>.init: a released or converted checkpoint).


rule train_unimodal:
    input:
        code=stage_code("train_unimodal"),
        prepared=lambda w: prepared_inputs(w.dataset, w.stream),
        init=lambda w: start_inputs(w.dataset, w.protocol, w.stream),
    output:
        [str(LAYOUT.train_dir("{dataset}", "{protocol}", "{stream}") / name) for name in TRAIN_FILES],
    wildcard_constraints:
        stream="pose|rgb",
    params:
        values=param_values(lambda w: train_params(w.stream)),
    threads: THREADS
    priority: PRIORITY["train_unimodal"]
    log:
        "logs/train_unimodal/{dataset}-{protocol}-{stream}.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} train --dataset {wildcards.dataset} --protocol {wildcards.protocol} --stream {wildcards.stream}"


rule train_fusion:
    input:
        code=stage_code("train_fusion"),
        prepared=lambda w: prepared_inputs(w.dataset, "fusion"),
        start=lambda w: start_inputs(w.dataset, w.protocol, "fusion"),
    output:
        [str(LAYOUT.train_dir("{dataset}", "{protocol}", "fusion") / name) for name in TRAIN_FILES],
    params:
        values=param_values(train_params("fusion")),
    threads: THREADS
    priority: PRIORITY["train_fusion"]
    log:
        "logs/train_fusion/{dataset}-{protocol}-fusion.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} train --dataset {wildcards.dataset} --protocol {wildcards.protocol} --stream fusion"
