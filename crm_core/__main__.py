from crm_core.cli import main

raise SystemExit(main())
