# Data preparation: acquire -> [pose_extract (sharded, skeletons: mmpose)] -> pose -> clips (PKU-MMD) -> crop (sharded) -> splits.


rule acquire:
    input:
        code=stage_code("acquire"),
    output:
        directory(f"{DATA}/raw/{{dataset}}"),
    params:
        values=param_values(lambda w: dataset_params(PARAMS, w.dataset)),
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
        f"{DATA}/interim/{{dataset}}/pose/shard-{{shard}}.pkl",
    params:
        values=param_values(POSE_EXTRACT_PARAMS),
    threads: THREADS
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
        f"{DATA}/interim/{{dataset}}/skeletons.pkl",
    params:
        values=param_values(lambda w: pose_params(PARAMS, w.dataset)),
    log:
        "logs/pose/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} pose --dataset {wildcards.dataset}"


rule clips:
    input:
        code=stage_code("clips"),
        raw=f"{DATA}/raw/pku",
        skeletons=f"{DATA}/interim/pku/skeletons.pkl",
    output:
        directory(f"{DATA}/interim/pku/clips"),
    log:
        "logs/clips/pku.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} clips --dataset pku"


rule crop:
    input:
        code=stage_code("crop"),
        source=lambda w: LAYOUT.crop_inputs(w.dataset),
    output:
        shard=f"{DATA}/interim/{{dataset}}/crop/shard-{{shard}}.pkl",
        videos=directory(f"{DATA}/prepared/{{dataset}}/videos/shard-{{shard}}"),
        failures=f"{DATA}/interim/{{dataset}}/crop/shard-{{shard}}.failures.json",
    params:
        values=param_values(CROP_PARAMS),
    log:
        "logs/crop/{dataset}-{shard}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} crop --dataset {wildcards.dataset} --shard {wildcards.shard}"


rule crop_merge:
    input:
        code=stage_code("crop_merge"),
        shards=expand(f"{DATA}/interim/{{{{dataset}}}}/crop/shard-{{shard}}.pkl", shard=SHARDS),
        videos=expand(f"{DATA}/prepared/{{{{dataset}}}}/videos/shard-{{shard}}", shard=SHARDS),
        failures=expand(f"{DATA}/interim/{{{{dataset}}}}/crop/shard-{{shard}}.failures.json", shard=SHARDS),
    output:
        f"{DATA}/prepared/{{dataset}}/annotations.pkl",
    params:
        values=param_values(CROP_MERGE_PARAMS),
    log:
        "logs/crop_merge/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} crop-merge --dataset {wildcards.dataset}"


rule splits:
    input:
        code=stage_code("splits"),
        annotations=f"{DATA}/prepared/{{dataset}}/annotations.pkl",
        raw=lambda w: list(splits_inputs(PARAMS, w.dataset)),
    output:
        directory(f"{DATA}/prepared/{{dataset}}/splits"),
    params:
        values=param_values(lambda w: splits_params(PARAMS, w.dataset)),
    log:
        "logs/splits/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} splits --dataset {wildcards.dataset}"
