"""The graduation-vs-admission batch comparison (the main job before 学历电子注册)."""
