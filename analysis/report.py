def report_studies(studies, folder, metric_split="test"):
    pass
