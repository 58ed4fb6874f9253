# Training: the two X-ShiftNet streams, then EPAM-Net initialised from both.


rule train_unimodal:
    input:
        code=STAGE_CODE["train"],
        prepared=lambda w: prepared_inputs(w.dataset, w.stream),
    output:
        model=f"{MODELS}/{{dataset}}/{{protocol}}/{{stream}}/model.pt",
        metrics=f"{MODELS}/{{dataset}}/{{protocol}}/{{stream}}/metrics.json",
        curve=f"{MODELS}/{{dataset}}/{{protocol}}/{{stream}}/metrics.csv",
    wildcard_constraints:
        stream="pose|rgb",
    params:
        values=param_values(lambda w: train_params(w.stream)),
    log:
        "logs/train_unimodal/{dataset}-{protocol}-{stream}.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} train --dataset {wildcards.dataset} --protocol {wildcards.protocol} --stream {wildcards.stream}"


rule train_fusion:
    input:
        code=STAGE_CODE["train"],
        prepared=lambda w: prepared_inputs(w.dataset, "fusion"),
        pose=f"{MODELS}/{{dataset}}/{{protocol}}/pose/model.pt",
        rgb=f"{MODELS}/{{dataset}}/{{protocol}}/rgb/model.pt",
    output:
        model=f"{MODELS}/{{dataset}}/{{protocol}}/fusion/model.pt",
        metrics=f"{MODELS}/{{dataset}}/{{protocol}}/fusion/metrics.json",
        curve=f"{MODELS}/{{dataset}}/{{protocol}}/fusion/metrics.csv",
    params:
        values=param_values(train_params("fusion")),
    log:
        "logs/train_fusion/{dataset}-{protocol}-fusion.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} train --dataset {wildcards.dataset} --protocol {wildcards.protocol} --stream fusion"
