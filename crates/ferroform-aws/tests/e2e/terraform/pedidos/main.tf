# pedidos (stacks/pedidos) written in HCL, resource for resource as ferroform's default pedidos declares it
# (`pedidos::stack::build` with the default Config, zones us-east-1a/b): the same names, CIDR blocks, settings
# and policies, so that `import --from-terraform` takes every object over and the next plan shows only what
# the two definitions really differ in. The e2e test `terraform_pedidos::*` deploys it on the emulator and
# takes it over; scripts/bench's "Side by side with Terraform" deploys it beside ferroform's pedidos.
#
# Where Terraform models apart what ferroform keeps in one resource, the pieces fold on takeover: the route
# table associations into the route tables, the lifecycle policy into the repository, the inline role
# policies (aws_iam_role_policy) into the roles.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {
    apigatewayv2 = var.endpoint
    cloudwatch   = local.cloudwatch_endpoint
    dynamodb     = var.endpoint
    ec2          = var.endpoint
    ecr          = var.endpoint
    ecs          = var.endpoint
    iam          = var.endpoint
    lambda       = var.endpoint
    logs         = var.endpoint
    sns          = var.endpoint
    sts          = var.endpoint
  }
  # ferroform's pedidos tags everything it can with `app = NAME` (its default tag).
  default_tags {
    tags = { app = local.name }
  }
}

locals {
  name                = "pedidos"
  zones               = ["us-east-1a", "us-east-1b"]
  cidr                = "10.20.0.0/16"
  retention           = 14
  cloudwatch_endpoint = var.cloudwatch_endpoint == "" ? var.endpoint : var.cloudwatch_endpoint
  # The routes and the slugs ferroform names their parts by (`api/SLUG/...`, statement `apigw-api-SLUG`).
  routes = {
    "get-pedidos"       = "GET /pedidos"
    "post-pedidos"      = "POST /pedidos"
    "get-pedidos-id"    = "GET /pedidos/{id}"
    "put-pedidos-id"    = "PUT /pedidos/{id}"
    "delete-pedidos-id" = "DELETE /pedidos/{id}"
  }
}

# ---- network: ferroform's Network component (VPC over two zones, one NAT, a DynamoDB gateway endpoint) ----

resource "aws_vpc" "main" {
  cidr_block           = local.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = local.name }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = local.name }
}

# Public subnets first, then private ones, each a /20 carved from the VPC's range (as the component does).
resource "aws_subnet" "public" {
  count                   = length(local.zones)
  vpc_id                  = aws_vpc.main.id
  cidr_block              = cidrsubnet(local.cidr, 4, count.index)
  availability_zone       = local.zones[count.index]
  map_public_ip_on_launch = true
  tags                    = { Name = "${local.name}-public-${local.zones[count.index]}", Tier = "public" }
}

resource "aws_subnet" "private" {
  count             = length(local.zones)
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(local.cidr, 4, length(local.zones) + count.index)
  availability_zone = local.zones[count.index]
  tags              = { Name = "${local.name}-private-${local.zones[count.index]}", Tier = "private" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
  tags = { Name = "${local.name}-public", Tier = "public" }
}

resource "aws_route_table_association" "public" {
  count          = length(local.zones)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  domain     = "vpc"
  tags       = { Name = "${local.name}-nat-${local.zones[0]}" }
  depends_on = [aws_internet_gateway.main]
}

resource "aws_nat_gateway" "main" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[0].id
  tags          = { Name = "${local.name}-${local.zones[0]}" }
  depends_on    = [aws_internet_gateway.main]
}

resource "aws_route_table" "private" {
  count  = length(local.zones)
  vpc_id = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.main.id
  }
  tags = { Name = "${local.name}-private-${local.zones[count.index]}", Tier = "private" }
}

resource "aws_route_table_association" "private" {
  count          = length(local.zones)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

resource "aws_vpc_endpoint" "dynamodb" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.us-east-1.dynamodb"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
  tags              = { Name = "${local.name}-dynamodb" }
}

# ---- data: the orders table and the worker's image repository ----

resource "aws_dynamodb_table" "orders" {
  name         = local.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"
  attribute {
    name = "id"
    type = "S"
  }
}

resource "aws_ecr_repository" "worker" {
  name         = "${local.name}-worker"
  force_delete = true
  image_scanning_configuration {
    scan_on_push = true
  }
}

resource "aws_ecr_lifecycle_policy" "worker" {
  repository = aws_ecr_repository.worker.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last 10 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 10 }
      action       = { type = "expire" }
    }]
  })
}

# ---- worker: ferroform's FargateTask component (cluster, log group, two roles, security group, task) ----

resource "aws_ecs_cluster" "worker" {
  name = "${local.name}-worker"
}

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/ecs/${local.name}-worker"
  retention_in_days = local.retention
}

# Terraform names its roles; ferroform's are named at create from the stack and address. The names differ,
# so identity cannot match these roles: the test's mapping file says which is which.
resource "aws_iam_role" "worker_execution" {
  name        = "${local.name}-worker-execution"
  description = "ECS pulls and logs for ${local.name}-worker"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ecs-tasks.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy" "worker_execution" {
  name = "execution"
  role = aws_iam_role.worker_execution.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
        Resource = "*"
      },
      { Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.worker.arn}:*" },
    ]
  })
}

resource "aws_iam_role" "worker_task" {
  name        = "${local.name}-worker-task"
  description = "the code of ${local.name}-worker"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ecs-tasks.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy" "worker_task" {
  name = "ferroform"
  role = aws_iam_role.worker_task.name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["dynamodb:UpdateItem"], Resource = aws_dynamodb_table.orders.arn }]
  })
}

resource "aws_security_group" "worker" {
  name        = "${local.name}-worker-task"
  description = "Fargate tasks of ${local.name}-worker: egress only"
  vpc_id      = aws_vpc.main.id
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "${local.name}-worker"
  cpu                      = "256"
  memory                   = "512"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  execution_role_arn       = aws_iam_role.worker_execution.arn
  task_role_arn            = aws_iam_role.worker_task.arn
  container_definitions = jsonencode([{
    name        = "worker"
    image       = "${aws_ecr_repository.worker.repository_url}:latest"
    essential   = true
    cpu         = 0
    memory      = 512
    environment = [{ name = "TABLE_NAME", value = aws_dynamodb_table.orders.name }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.worker.name
        "awslogs-region"        = "us-east-1"
        "awslogs-stream-prefix" = "worker"
      }
    }
  }])
}

# ---- the API function ----

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${local.name}-api"
  retention_in_days = local.retention
}

resource "aws_iam_role" "function" {
  name        = "${local.name}-api"
  description = "${local.name}-api: its table, starting the worker, its logs"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "lambda.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy" "function" {
  name = "ferroform"
  role = aws_iam_role.function.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
        Resource = aws_dynamodb_table.orders.arn
      },
      { Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.function.arn}:*" },
    ]
  })
}

resource "aws_iam_role_policy" "function_run_worker" {
  name = "run-worker"
  role = aws_iam_role.function.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Action    = "ecs:RunTask"
        Resource  = "arn:aws:ecs:*:*:task-definition/${aws_ecs_task_definition.worker.family}:*"
        Condition = { ArnEquals = { "ecs:cluster" = aws_ecs_cluster.worker.arn } }
      },
      { Effect = "Allow", Action = "iam:PassRole", Resource = [aws_iam_role.worker_execution.arn, aws_iam_role.worker_task.arn] },
    ]
  })
}

resource "aws_lambda_function" "api" {
  function_name    = "${local.name}-api"
  description      = "pedidos: the orders HTTP API"
  role             = aws_iam_role.function.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["x86_64"]
  memory_size      = 256
  timeout          = 15
  filename         = var.code_zip
  source_code_hash = filebase64sha256(var.code_zip)
  # It logs to /aws/lambda/pedidos-api, the log group above, which is Lambda's default for its name (and
  # ferroform's `log_group`). No logging_config block: moto 5.2.5 does not report one back, so Terraform would
  # plan to set it again on every run.
  environment {
    variables = {
      TABLE_NAME          = aws_dynamodb_table.orders.name
      CLUSTER_ARN         = aws_ecs_cluster.worker.arn
      TASK_DEFINITION_ARN = aws_ecs_task_definition.worker.arn
      SUBNETS             = join(",", aws_subnet.private[*].id)
      SECURITY_GROUPS     = aws_security_group.worker.id
      CONTAINER_NAME      = "worker"
      ASSIGN_PUBLIC_IP    = "DISABLED"
    }
  }
}

# ---- the HTTP API ----

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/apigateway/${local.name}"
  retention_in_days = local.retention
}

resource "aws_apigatewayv2_api" "api" {
  name          = local.name
  description   = "pedidos: the orders API"
  protocol_type = "HTTP"
  cors_configuration {
    allow_origins = ["*"]
    allow_methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    allow_headers = ["content-type", "authorization"]
    max_age       = 300
  }
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.api.id
  name        = "$default"
  auto_deploy = true
  tags        = var.stage_tags
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    # The line as ferroform writes it (`AccessLog::json`): its keys in this order, which jsonencode would sort.
    format = "{\"requestId\":\"$context.requestId\",\"ip\":\"$context.identity.sourceIp\",\"requestTime\":\"$context.requestTime\",\"httpMethod\":\"$context.httpMethod\",\"routeKey\":\"$context.routeKey\",\"status\":\"$context.status\",\"protocol\":\"$context.protocol\",\"responseLength\":\"$context.responseLength\",\"integrationError\":\"$context.integrationErrorMessage\"}"
  }
}

# One integration per route, as ferroform's `lambda_route` makes them: alike but for their ids, so identity
# (type and payload version) finds five candidates for each; the mapping file pairs them by route.
resource "aws_apigatewayv2_integration" "route" {
  for_each               = local.routes
  api_id                 = aws_apigatewayv2_api.api.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.api.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "route" {
  for_each  = local.routes
  api_id    = aws_apigatewayv2_api.api.id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.route[each.key].id}"
}

resource "aws_lambda_permission" "route" {
  for_each      = local.routes
  statement_id  = "apigw-api-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.api.execution_arn}/*/*"
}

# ---- monitoring (stacks/pedidos/src/monitoring.rs): alarms to a topic, the worker's failures, a dashboard ----

resource "aws_sns_topic" "alarms" {
  name         = "${local.name}-alarms"
  display_name = "${local.name} alarms"
}

resource "aws_cloudwatch_log_metric_filter" "worker_failures" {
  name           = "${local.name}-worker-failures"
  log_group_name = aws_cloudwatch_log_group.worker.name
  pattern        = "?ERROR ?REJECTED"
  metric_transformation {
    namespace     = local.name
    name          = "WorkerFailures"
    value         = "1"
    default_value = "0"
  }
}

locals {
  api_dims      = { ApiId = aws_apigatewayv2_api.api.id }
  function_dims = { FunctionName = aws_lambda_function.api.function_name }
  table_dims    = { TableName = aws_dynamodb_table.orders.name }
  # name suffix => namespace, metric, dimensions, description, threshold, p99 or a sum
  alarms = {
    "api-5xx"               = ["AWS/ApiGateway", "5xx", local.api_dims, "the API answered 5xx", 5, false]
    "api-p99-latency"       = ["AWS/ApiGateway", "Latency", local.api_dims, "the API's slowest 1% take longer than the threshold (ms)", 2000, true]
    "function-errors"       = ["AWS/Lambda", "Errors", local.function_dims, "the API function failed (an error or a timeout)", 5, false]
    "function-throttles"    = ["AWS/Lambda", "Throttles", local.function_dims, "invocations of the API function were throttled", 1, false]
    "function-p99-duration" = ["AWS/Lambda", "Duration", local.function_dims, "the API function's slowest 1% take longer than the threshold (ms)", 10000, true]
    "worker-failures"       = [local.name, "WorkerFailures", {}, "the worker failed or rejected orders (its log group)", 1, false]
    "table-read-throttles"  = ["AWS/DynamoDB", "ReadThrottleEvents", local.table_dims, "reads of the orders table were throttled", 1, false]
    "table-write-throttles" = ["AWS/DynamoDB", "WriteThrottleEvents", local.table_dims, "writes to the orders table were throttled", 1, false]
  }
}

resource "aws_cloudwatch_metric_alarm" "alarm" {
  for_each            = local.alarms
  alarm_name          = "${local.name}-${each.key}"
  namespace           = each.value[0]
  metric_name         = each.value[1]
  dimensions          = each.value[2]
  alarm_description   = each.value[3]
  threshold           = each.value[4]
  statistic           = each.value[5] ? null : "Sum"
  extended_statistic  = each.value[5] ? "p99" : null
  evaluation_periods  = each.value[5] ? 3 : 1
  comparison_operator = each.value[5] ? "GreaterThanThreshold" : "GreaterThanOrEqualToThreshold"
  period              = 300
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  depends_on          = [aws_cloudwatch_log_metric_filter.worker_failures]
}

locals {
  api_id   = aws_apigatewayv2_api.api.id
  function = aws_lambda_function.api.function_name
  table    = aws_dynamodb_table.orders.name
  # title, metrics, statistic: two widgets of 12 x 6 a row.
  widgets = [
    ["API requests", [["AWS/ApiGateway", "Count", "ApiId", local.api_id]], "Sum"],
    ["API 4xx and 5xx", [["AWS/ApiGateway", "4xx", "ApiId", local.api_id], ["AWS/ApiGateway", "5xx", "ApiId", local.api_id]], "Sum"],
    ["API latency p99 (ms)", [["AWS/ApiGateway", "Latency", "ApiId", local.api_id]], "p99"],
    ["Function invocations, errors, throttles", [
      ["AWS/Lambda", "Invocations", "FunctionName", local.function],
      ["AWS/Lambda", "Errors", "FunctionName", local.function],
      ["AWS/Lambda", "Throttles", "FunctionName", local.function],
    ], "Sum"],
    ["Function duration p99 (ms)", [["AWS/Lambda", "Duration", "FunctionName", local.function]], "p99"],
    ["Worker: failed or rejected orders", [[local.name, "WorkerFailures"]], "Sum"],
    ["Table consumed capacity", [
      ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", local.table],
      ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", local.table],
    ], "Sum"],
    ["Table throttled requests", [
      ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", local.table],
      ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", local.table],
    ], "Sum"],
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = [for i, w in local.widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w[0]
        view    = "timeSeries"
        stacked = false
        region  = "us-east-1"
        stat    = w[2]
        period  = 300
        metrics = w[1]
      }
    }]
  })
}
