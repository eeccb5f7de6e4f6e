from pathview.cli import main

raise SystemExit(main())
