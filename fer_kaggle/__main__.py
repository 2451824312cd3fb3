from fer_kaggle.cli import main

raise SystemExit(main())
