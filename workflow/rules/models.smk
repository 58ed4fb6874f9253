# Model cost: parameters, multiply-adds and throughput of EPAM-Net at the paper's sizes.


rule profile:
    input:
        code=stage_code("profile"),
    output:
        [str(p) for p in LAYOUT.efficiency_tables()],
    params:
        values=param_values(PROFILE_PARAMS),
    threads: THREADS
    priority: PRIORITY["profile"]
    log:
        "logs/profile/paper.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} profile"
