# Evaluation of every trained stream on its protocol's test list (1 clip per video).


rule evaluate:
    input:
        code=stage_code("evaluate"),
        prepared=lambda w: prepared_inputs(w.dataset, w.stream),
        fusion_inputs=lambda w: fusion_inputs(w.dataset, w.protocol, w.stream),
        model=str(LAYOUT.model_file("{dataset}", "{protocol}", "{stream}")),
        trained=str(LAYOUT.train_metrics("{dataset}", "{protocol}", "{stream}")),
    output:
        [str(LAYOUT.eval_dir("{dataset}", "{protocol}", "{stream}") / name) for name in EVAL_FILES],
    params:
        values=param_values(lambda w: train_params(w.stream)),
    threads: THREADS
    log:
        "logs/evaluate/{dataset}-{protocol}-{stream}.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} evaluate --dataset {wildcards.dataset} --protocol {wildcards.protocol} --stream {wildcards.stream}"
