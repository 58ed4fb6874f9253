# Data preparation: acquire -> [pose_extract (sharded, skeletons: mmpose)] -> pose -> clips (PKU-MMD) -> crop (sharded) -> splits.


rule acquire:
    input:
        code=STAGE_CODE["acquire"],
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
        code=STAGE_CODE["pose_extract"],
        sources=lambda w: pose_extract_inputs(PARAMS, w.dataset),
    output:
        f"{DATA}/interim/{{dataset}}/pose/shard-{{shard}}.pkl",
    params:
        values=param_values(["pose"]),
    log:
        "logs/pose_extract/{dataset}-{shard}.log",
    conda:
        "../../envs/pose.yaml"
    shell:
        "epamnet --log {log} pose-extract --dataset {wildcards.dataset} --shard {wildcards.shard}"


rule pose:
    input:
        code=STAGE_CODE["pose"],
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
        code=STAGE_CODE["clips"],
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
        code=STAGE_CODE["crop"],
        source=lambda w: LAYOUT.crop_inputs(w.dataset),
    output:
        shard=f"{DATA}/interim/{{dataset}}/crop/shard-{{shard}}.pkl",
        videos=directory(f"{DATA}/prepared/{{dataset}}/videos/shard-{{shard}}"),
        failures=f"{DATA}/interim/{{dataset}}/crop/shard-{{shard}}.failures.json",
    params:
        values=param_values(["prepare.crop", "prepare.on_sample_error", "prepare.shards"]),
    log:
        "logs/crop/{dataset}-{shard}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} crop --dataset {wildcards.dataset} --shard {wildcards.shard}"


rule crop_merge:
    input:
        code=STAGE_CODE["crop_merge"],
        shards=expand(f"{DATA}/interim/{{{{dataset}}}}/crop/shard-{{shard}}.pkl", shard=SHARDS),
        videos=expand(f"{DATA}/prepared/{{{{dataset}}}}/videos/shard-{{shard}}", shard=SHARDS),
        failures=expand(f"{DATA}/interim/{{{{dataset}}}}/crop/shard-{{shard}}.failures.json", shard=SHARDS),
    output:
        f"{DATA}/prepared/{{dataset}}/annotations.pkl",
    params:
        values=param_values(["prepare.shards"]),
    log:
        "logs/crop_merge/{dataset}.log",
    conda:
        "../../envs/prepare.yaml"
    shell:
        "epamnet --log {log} crop-merge --dataset {wildcards.dataset}"


rule splits:
    input:
        code=STAGE_CODE["splits"],
        annotations=f"{DATA}/prepared/{{dataset}}/annotations.pkl",
        raw=lambda w: [f"{DATA}/raw/pku"] if w.dataset == "pku" else [],
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
