-- Every object of the extension mcp_oauth, one line each, with its
-- definition, owner-independent privileges and comment: two databases with
-- the same lines have the same schema. (pg_dump leaves extension members
-- out, so it cannot tell.)
WITH members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'mcp_oauth' AND d.deptype = 'e'
)
SELECT line FROM (
    -- Functions: the whole definition, and who may run them.
    SELECT format('function %s: %s; acl %s; comment %s', p.oid::regprocedure, pg_get_functiondef(p.oid),
                  p.proacl, obj_description(p.oid, 'pg_proc')) AS line
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    -- Tables, views, sequences: columns, privileges, comments.
    SELECT format('relation %s (%s): acl %s; rls %s/%s; comment %s', c.oid::regclass, c.relkind, c.relacl,
                  c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class'))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    SELECT format('column %s.%s %s%s default %s; acl %s; comment %s', c.oid::regclass, a.attname,
                  format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attacl, col_description(c.oid, a.attnum))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('view %s: %s', c.oid::regclass, pg_get_viewdef(c.oid))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid AND c.relkind = 'v'
    UNION ALL
    SELECT format('constraint %s on %s: %s', co.conname, co.conrelid::regclass, pg_get_constraintdef(co.oid))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_constraint co ON co.conrelid = c.oid
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT format('trigger %s', pg_get_triggerdef(t.oid))
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
      JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s on %s: %s %s to %s using (%s) check (%s)', pol.policyname, pol.tablename, pol.permissive,
                  pol.cmd, pol.roles, pol.qual, pol.with_check)
      FROM pg_policies pol WHERE (pol.schemaname || '.' || pol.tablename)::regclass IN
           (SELECT objid::regclass FROM members WHERE classid = 'pg_class'::regclass)
    UNION ALL
    -- Anything else the extension owns (types, casts, ...), by name.
    SELECT format('object %s', pg_describe_object(m.classid, m.objid, m.objsubid))
      FROM members m WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass)
) lines
ORDER BY line;
