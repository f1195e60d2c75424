import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterClientQuotasOptions;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;

/**
 * Kafka's AdminClient alterClientQuotas / describeClientQuotas: sets quotas on a user's
 * default client-id and on a client-id, validates one only, refuses a bad key, describes
 * by filter (exact, default, any; strict or not) and removes a key. Prints one line per
 * step, entities and keys sorted so the output is stable.
 *
 * Arguments: bootstrap.
 */
public class QuotaInterop {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(props)) {
            Map<String, String> aliceDefault = new HashMap<>();
            aliceDefault.put(ClientQuotaEntity.USER, "alice");
            aliceDefault.put(ClientQuotaEntity.CLIENT_ID, null);
            ClientQuotaEntity alice = new ClientQuotaEntity(aliceDefault);
            ClientQuotaEntity c1 = new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, "c1"));
            admin.alterClientQuotas(List.of(
                    new ClientQuotaAlteration(alice, List.of(new ClientQuotaAlteration.Op("producer_byte_rate", 1024.0),
                            new ClientQuotaAlteration.Op("request_percentage", 50.0))),
                    new ClientQuotaAlteration(c1, List.of(new ClientQuotaAlteration.Op("consumer_byte_rate", 2048.0)))))
                    .all().get();
            System.out.println("altered");
            ClientQuotaEntity validated = new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, "val"));
            admin.alterClientQuotas(List.of(new ClientQuotaAlteration(validated,
                    List.of(new ClientQuotaAlteration.Op("producer_byte_rate", 5.0)))),
                    new AlterClientQuotasOptions().validateOnly(true)).all().get();
            System.out.println("validated");
            try {
                admin.alterClientQuotas(List.of(new ClientQuotaAlteration(c1,
                        List.of(new ClientQuotaAlteration.Op("bogus", 5.0))))).all().get();
                System.out.println("bogus: accepted");
            } catch (ExecutionException e) {
                System.out.println("bogus: " + e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage());
            }
            describe(admin, "all", ClientQuotaFilter.all());
            describe(admin, "user alice", ClientQuotaFilter.contains(List.of(ClientQuotaFilterComponent.ofEntity("user", "alice"))));
            describe(admin, "user alice strict", ClientQuotaFilter.containsOnly(List.of(ClientQuotaFilterComponent.ofEntity("user", "alice"))));
            describe(admin, "default client-id", ClientQuotaFilter.contains(List.of(ClientQuotaFilterComponent.ofDefaultEntity("client-id"))));
            describe(admin, "any client-id strict", ClientQuotaFilter.containsOnly(List.of(ClientQuotaFilterComponent.ofEntityType("client-id"))));
            describe(admin, "user val", ClientQuotaFilter.contains(List.of(ClientQuotaFilterComponent.ofEntity("user", "val"))));
            admin.alterClientQuotas(List.of(new ClientQuotaAlteration(alice,
                    List.of(new ClientQuotaAlteration.Op("request_percentage", null))))).all().get();
            describe(admin, "after remove", ClientQuotaFilter.all());
        }
    }

    static void describe(Admin admin, String what, ClientQuotaFilter filter) throws Exception {
        Map<ClientQuotaEntity, Map<String, Double>> found = admin.describeClientQuotas(filter).entities().get();
        List<String> lines = new ArrayList<>();
        for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e : found.entrySet()) {
            lines.add(new TreeMap<>(e.getKey().entries()) + "=" + new TreeMap<>(e.getValue()));
        }
        lines.sort(null);
        System.out.println(what + ": " + lines);
    }
}
