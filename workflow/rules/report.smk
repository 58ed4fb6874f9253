# The paper's tables and figures from every finished run (last in the DAG).


rule report:
    input:
        code=stage_code("report"),
        runs=[str(p) for p in report_inputs(PARAMS)],
    output:
        [str(p) for p in report_outputs(PARAMS) if p.suffix],
        directory(str(LAYOUT.figures)),
    params:
        values=param_values(REPORT_PARAMS),
    log:
        "logs/report/all.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "epamnet --log {log} report"
