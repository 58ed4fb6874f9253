# Data preparation: acquire -> [pose_extract (sharded, skeletons: mmpose)] -> pose -> clips (PKU-MMD) -> crop (sharded) -> splits.


rule acquire:
    input:
        code=stage_code("acquire"),
    output:
        directory(str(LAYOUT.raw("{dataset}"))),
    params:
        values=param_values(lambda w: dataset_params(PARAMS, w.dataset)),
    priority: PRIORITY["data"]
    log:
        "logs/acquire/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} acquire --dataset {wildcards.dataset}"


rule pose_extract:
    input:
        code=stage_code("pose_extract"),
        sources=lambda w: pose_extract_inputs(PARAMS, w.dataset),
    output:
        str(LAYOUT.pose_shard("{dataset}", "{shard}")),
    params:
        values=param_values(POSE_EXTRACT_PARAMS),
    threads: THREADS
    priority: PRIORITY["data"]
    log:
        "logs/pose_extract/{dataset}-{shard}.log",
    conda:
        "../../envs/pose.yaml"
    shell:
        "epamnet --log {log} pose-extract --dataset {wildcards.dataset} --shard {wildcards.shard}"


rule pose:
    input:
        code=stage_code("pose"),
        sources=lambda w: pose_inputs(PARAMS, w.dataset),
    output:
        str(LAYOUT.skeletons("{dataset}")),
    params:
        values=param_values(lambda w: pose_params(PARAMS, w.dataset)),
    priority: PRIORITY["data"]
    log:
        "logs/pose/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} pose --dataset {wildcards.dataset}"


rule clips:
    input:
        code=stage_code("clips"),
        raw=str(LAYOUT.raw("{dataset}")),
        skeletons=str(LAYOUT.skeletons("{dataset}")),
    output:
        directory(str(LAYOUT.clips("{dataset}"))),
    params:
        values=param_values(CLIPS_PARAMS),
    wildcard_constraints:
        dataset="|".join(CLIP_DATASETS) or "(?!)",
    priority: PRIORITY["data"]
    log:
        "logs/clips/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} clips --dataset {wildcards.dataset}"


rule crop:
    input:
        code=stage_code("crop"),
        source=lambda w: LAYOUT.crop_inputs(w.dataset),
    output:
        shard=str(LAYOUT.crop_shard("{dataset}", "{shard}")),
        videos=directory(str(LAYOUT.crop_videos("{dataset}", "{shard}"))),
        failures=str(LAYOUT.crop_failures("{dataset}", "{shard}")),
    params:
        values=param_values(CROP_PARAMS),
    priority: PRIORITY["data"]
    log:
        "logs/crop/{dataset}-{shard}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} crop --dataset {wildcards.dataset} --shard {wildcards.shard}"


rule crop_merge:
    input:
        code=stage_code("crop_merge"),
        shards=expand(str(LAYOUT.crop_shard("{{dataset}}", "{shard}")), shard=SHARDS),
        videos=expand(str(LAYOUT.crop_videos("{{dataset}}", "{shard}")), shard=SHARDS),
        failures=expand(str(LAYOUT.crop_failures("{{dataset}}", "{shard}")), shard=SHARDS),
    output:
        str(LAYOUT.annotations("{dataset}")),
    params:
        values=param_values(CROP_MERGE_PARAMS),
    priority: PRIORITY["data"]
    log:
        "logs/crop_merge/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} crop-merge --dataset {wildcards.dataset}"


rule splits:
    input:
        code=stage_code("splits"),
        annotations=str(LAYOUT.annotations("{dataset}")),
        raw=lambda w: list(splits_inputs(PARAMS, w.dataset)),
    output:
        directory(str(LAYOUT.splits("{dataset}"))),
    params:
        values=param_values(lambda w: splits_params(PARAMS, w.dataset)),
    priority: PRIORITY["data"]
    log:
        "logs/splits/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} splits --dataset {wildcards.dataset}"
