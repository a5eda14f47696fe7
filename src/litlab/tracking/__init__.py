"""What a run leaves behind: run.json, wandb, figures, the printed summary; secrets kept out."""
